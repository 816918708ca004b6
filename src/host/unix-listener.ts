// A unix socket that accepts exactly one connection: how QEMU's chardevs reach corral. With
// `isRedialled`, it goes on accepting: a chardev with `reconnect` dials again after its peer
// closed, and each next() takes the newest connection.

import { once } from "node:events";
import { rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";

export interface UnixListenerOptions {
  /** Keep accepting after the first connection (a chardev that dials again); default false. */
  isRedialled?: boolean;
}

export class UnixListener {
  readonly path: string;
  /** Resolves with the first connection; never rejects. */
  readonly accepted: Promise<Socket>;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** Connections nobody has taken yet (redialled listeners). */
  #waiting: Socket | undefined;
  #taker: ((socket: Socket) => void) | undefined;
  #socket: Socket | undefined;

  private constructor(path: string, server: Server, options: UnixListenerOptions) {
    this.path = path;
    this.#server = server;
    const { promise, resolve } = Promise.withResolvers<Socket>();
    this.accepted = promise;
    server.on("connection", (socket: Socket) => {
      // A reset when the VMM dies is reported to whoever reads the socket; never crash on it.
      socket.on("error", () => {});
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
      if (!this.#socket) {
        this.#socket = socket;
        resolve(socket);
        if (!options.isRedialled) {
          server.close();
          return;
        }
      }
      const taker = this.#taker;
      this.#taker = undefined;
      if (taker) taker(socket);
      else this.#waiting = socket;
    });
  }

  /** Listens at `path`, replacing a socket file left there by an earlier listener. */
  static async listen(path: string, options: UnixListenerOptions = {}): Promise<UnixListener> {
    await rm(path, { force: true });
    const server = createServer();
    server.listen(path);
    await once(server, "listening");
    return new UnixListener(path, server, options);
  }

  /** The first connection, if one was made. */
  get socket(): Socket | undefined {
    return this.#socket;
  }

  /**
   * A redialled listener's newest connection that is still open, or the next one to come (the
   * caller races it against its deadline). One caller at a time.
   */
  next(): Promise<Socket> {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting && !waiting.destroyed && waiting.readable) return Promise.resolve(waiting);
    return new Promise((resolve) => {
      this.#taker = resolve;
    });
  }

  close(): void {
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
  }
}
