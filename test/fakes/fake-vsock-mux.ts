// A fake of the VMM's hybrid vsock socket (neither Firecracker's nor Cloud Hypervisor's): it
// answers `CONNECT <port>\n` by dialling the unix socket `<dir>/<port>`, where a test's "guest"
// side listens, then answers `OK <port>\n` and relays both ways; when nothing listens there it
// closes the connection, as the VMMs do when the guest refuses.

import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";

export interface FakeVsockMux extends AsyncDisposable {
  /** The socket the host side dials (the VMM's `uds_path` / `socket`). */
  readonly path: string;
}

/** Listens on `path`, relaying each guest port to the unix socket `<guestDir>/<port>`. */
export async function startFakeVsockMux(path: string, guestDir: string): Promise<FakeVsockMux> {
  const open = new Set<Socket>();
  const server: Server = createServer((host) => {
    open.add(host);
    host.on("close", () => open.delete(host));
    host.on("error", () => {});
    let line = "";
    const onData = (chunk: Buffer): void => {
      line += chunk.toString("latin1");
      const end = line.indexOf("\n");
      if (end === -1) return;
      host.off("data", onData);
      host.pause();
      const port = /^CONNECT (\d+)$/.exec(line.slice(0, end))?.[1];
      if (!port) return void host.destroy();
      const guest = connect(join(guestDir, port));
      open.add(guest);
      guest.on("close", () => {
        open.delete(guest);
        host.destroy();
      });
      guest.on("error", () => host.destroy());
      guest.once("connect", () => {
        host.write(`OK ${port}\n`);
        const rest = Buffer.from(line.slice(end + 1), "latin1");
        if (rest.length > 0) guest.write(rest);
        host.pipe(guest);
        guest.pipe(host);
        host.on("close", () => guest.destroy());
      });
    };
    host.on("data", onData);
  });
  server.listen(path);
  await once(server, "listening");
  return {
    path,
    async [Symbol.asyncDispose]() {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
