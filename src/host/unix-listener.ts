// A unix socket that accepts exactly one connection: how QEMU's chardevs reach corral.

import { once } from "node:events";
import { rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";

export class UnixListener {
  readonly path: string;
  /** Resolves with the first connection; never rejects. */
  readonly accepted: Promise<Socket>;
  readonly #server: Server;
  #socket: Socket | undefined;

  private constructor(path: string, server: Server) {
    this.path = path;
    this.#server = server;
    this.accepted = new Promise((resolve) =>
      server.once("connection", (socket: Socket) => {
        // A reset when the VMM dies is reported to whoever reads the socket; never crash on it.
        socket.on("error", () => {});
        this.#socket = socket;
        server.close();
        resolve(socket);
      }),
    );
  }

  /** Listens at `path`, replacing a socket file left there by an earlier listener. */
  static async listen(path: string): Promise<UnixListener> {
    await rm(path, { force: true });
    const server = createServer();
    server.listen(path);
    await once(server, "listening");
    return new UnixListener(path, server);
  }

  /** The connection, if one was made. */
  get socket(): Socket | undefined {
    return this.#socket;
  }

  close(): void {
    this.#server.close();
    this.#socket?.destroy();
  }
}
