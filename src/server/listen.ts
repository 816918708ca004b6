// Where the daemon listens: a unix socket (its folder 0700 when corral creates it, the socket
// 0600), replacing a stale socket file but never a live daemon's; and, when asked, a TCP address
// where every request needs the bearer token.

import { once } from "node:events";
import { chmod, lstat, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { dirname } from "node:path";
import type { FastifyInstance } from "fastify";
import { CorralError, ErrorCodes } from "../errors.ts";
import { makeDirs } from "../host/make-dirs.ts";
import { MAX_SOCKET_PATH_BYTES } from "../host/paths.ts";
import { PidLock } from "../host/pid-lock.ts";
import { trustSocketConnection } from "./auth.ts";
import type { ListenAddress } from "./config.ts";
import { clientError } from "./error-handling.ts";

const PROBE_TIMEOUT_MS = 2000;

export interface ListenOptions {
  /** The unix socket's path. */
  socket: string;
  /** Also listen here on TCP; `port: 0` picks a free port. */
  tcp?: ListenAddress | undefined;
}

/** A daemon's open doors; `close()` stops both, waits for requests in flight, removes the socket. */
export interface Listening extends AsyncDisposable {
  readonly socket: string;
  /** The TCP address actually bound (its real port when 0 was asked), if any. */
  readonly tcp: ListenAddress | undefined;
  close(): Promise<void>;
}

/**
 * Makes `app` answer on the unix socket and, with `tcp`, on TCP. Throws CORRAL_CONFLICT while a
 * live daemon answers on the socket or the TCP address is taken, and CORRAL_INVALID_ARGUMENT for
 * a path that cannot be a socket.
 */
export async function listen(app: FastifyInstance, options: ListenOptions): Promise<Listening> {
  const { socket } = options;
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `the socket path ${socket} is ${Buffer.byteLength(socket)} bytes long; unix sockets allow ${MAX_SOCKET_PATH_BYTES}: choose a shorter --socket`,
    );
  }
  await using stack = new AsyncDisposableStack();
  for (const created of await makeDirs(dirname(socket), "the socket's folder")) {
    await chmod(created, 0o700);
  }
  await refuseLiveDaemon(socket);
  // Two daemons starting at once: the second fails here instead of removing the first's socket.
  stack.use(await PidLock.acquire(`${socket}.lock`, `the socket ${socket}`));
  await removeStaleSocket(socket);
  // Disposed in reverse: the socket file goes after the servers close, before the lock.
  stack.defer(() => rm(socket, { force: true }));

  app.server.on("connection", trustSocketConnection);
  await app.listen({ path: socket });
  stack.defer(() => app.close());
  await chmod(socket, 0o600);

  let tcpServer: Server | undefined;
  let tcp: ListenAddress | undefined;
  if (options.tcp) {
    tcpServer = createServer(app.routing);
    tcpServer.on("clientError", clientError);
    // WebSocket upgrades go where Fastify's own server sends them.
    tcpServer.on("upgrade", (...args) => app.server.emit("upgrade", ...args));
    tcp = await listenTcp(tcpServer, options.tcp);
    const server = tcpServer;
    stack.defer(() => closeServer(server));
    app.log.info(
      `Server listening at http://${formatHost(tcp.host)}:${tcp.port} (bearer token required)`,
    );
  }

  const doors = stack.move();
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= doors.disposeAsync();
    return closing;
  };
  return { socket, tcp, close, [Symbol.asyncDispose]: close };
}

/**
 * Throws CORRAL_CONFLICT when something accepts connections on `path`, or it is not a socket: the
 * daemon checks this before it does anything else, listen() again when it binds.
 */
export async function refuseLiveDaemon(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (info === undefined) return;
  if (!info.isSocket()) {
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `${path} exists and is not a socket: corral serve will not replace it; remove it or choose another --socket`,
    );
  }
  if (await answers(path)) {
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `a daemon is already listening on ${path} (another corral serve?): stop it, or give this one another --socket`,
    );
  }
}

/** Removes the socket file a dead daemon left (nothing accepts on it any more). */
async function removeStaleSocket(path: string): Promise<void> {
  await refuseLiveDaemon(path);
  await rm(path, { force: true });
}

/** Whether a process accepts connections on the unix socket at `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = connect(path);
    const settle = (isLive: boolean) => {
      probe.destroy();
      resolve(isLive);
    };
    probe.setTimeout(PROBE_TIMEOUT_MS, () => settle(true));
    probe.on("connect", () => settle(true));
    probe.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED" || error.code === "ENOENT") return settle(false);
      probe.destroy();
      reject(
        new CorralError(
          ErrorCodes.CONFLICT,
          `cannot tell whether a daemon listens on ${path}: ${error.message}`,
          { cause: error },
        ),
      );
    });
  });
}

async function listenTcp(server: Server, address: ListenAddress): Promise<ListenAddress> {
  server.listen(address.port, address.host);
  try {
    await once(server, "listening");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `${formatHost(address.host)}:${address.port}`;
    if (code === "EADDRINUSE") {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `the TCP address ${where} is in use: choose another --listen`,
        {
          cause: error,
        },
      );
    }
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `cannot listen on ${where}: ${code === "EADDRNOTAVAIL" || code === "ENOTFOUND" ? "no such address on this host" : (error as Error).message}`,
      { cause: error },
    );
  }
  const bound = server.address();
  return typeof bound === "object" && bound !== null
    ? { host: address.host, port: bound.port }
    : address;
}

/** Stops accepting, lets requests in flight finish, closes idle keep-alive connections. */
async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, "close");
  server.close();
  server.closeIdleConnections();
  await closed;
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
