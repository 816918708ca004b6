// Whether a port of the host is taken, asked the only reliable way: by trying to bind it, as QEMU's
// user-mode network would.

import { createSocket } from "node:dgram";
import { createServer } from "node:net";

/** Where to try: a TCP listener or a UDP socket on `address` (0.0.0.0: every address). */
export interface PortProbe {
  address: string;
  port: number;
  protocol: "tcp" | "udp";
}

/**
 * Binds `probe` and lets go at once: `free`, `in-use` (EADDRINUSE, something else has it) or
 * `not-local` (EADDRNOTAVAIL: no such address on this host). Rejects for any other error.
 */
export function probePort(probe: PortProbe): Promise<"free" | "in-use" | "not-local"> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve("in-use");
      else if (error.code === "EADDRNOTAVAIL") resolve("not-local");
      else reject(error);
    };
    if (probe.protocol === "udp") {
      const socket = createSocket("udp4");
      socket.once("error", (error) => {
        try {
          socket.close();
        } catch {
          // Already closed by the failed bind.
        }
        failed(error);
      });
      socket.bind({ port: probe.port, address: probe.address, exclusive: true }, () => {
        socket.close(() => resolve("free"));
      });
      return;
    }
    const server = createServer();
    server.once("error", failed);
    server.listen({ port: probe.port, host: probe.address, exclusive: true }, () => {
      server.close(() => resolve("free"));
    });
  });
}

/** True when something already listens on 127.0.0.1:`port` (binding it fails with EADDRINUSE). */
export async function isLocalPortInUse(port: number): Promise<boolean> {
  return (await probePort({ address: "127.0.0.1", port, protocol: "tcp" })) === "in-use";
}
