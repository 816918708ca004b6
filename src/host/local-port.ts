// Whether a TCP port on the host's loopback address is taken, asked the only reliable way: by
// trying to listen on it.

import { createServer } from "node:net";

/** True when something already listens on 127.0.0.1:`port` (binding it fails with EADDRINUSE). */
export function isLocalPortInUse(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") resolve(true);
      else reject(error);
    });
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      server.close(() => resolve(false));
    });
  });
}
