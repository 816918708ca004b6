// The CLI's WebSocket client of `corral serve` (exec and console), undici's, over the daemon's
// unix socket or TCP with the bearer token; a server's `error` frame and 4xxx close become the
// ApiError the daemon meant.

import type { Agent, WebSocket } from "undici";
import { CorralError, type ErrorCode, ErrorCodes, httpStatus } from "../errors.ts";
import { undici } from "../host/undici.ts";
import { ApiError, type ApiTarget } from "./api-client.ts";

export interface SocketClose {
  code: number;
  reason: string;
  /** The daemon's error frame before a 4xxx close, as an ApiError. */
  error: ApiError | undefined;
}

export interface ApiSocketHandlers {
  /** A JSON text frame other than `error`. */
  onFrame?(frame: Record<string, unknown>): void;
  onBytes?(chunk: Buffer): void;
}

/** An open WebSocket to the daemon. */
export class ApiSocket {
  readonly #socket: WebSocket;
  readonly #agent: Agent;
  /** Resolves when the socket has closed, with the code, the reason and the daemon's error. */
  readonly closed: Promise<SocketClose>;

  private constructor(socket: WebSocket, agent: Agent, handlers: ApiSocketHandlers) {
    this.#socket = socket;
    this.#agent = agent;
    let error: ApiError | undefined;
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return handlers.onBytes?.(Buffer.from(event.data));
      const frame = JSON.parse(event.data) as Record<string, unknown>;
      if (frame.type === "error") error = errorOf(frame);
      else handlers.onFrame?.(frame);
    });
    this.closed = new Promise((resolve) =>
      socket.addEventListener("close", (event) => {
        void agent.close();
        resolve({ code: event.code, reason: event.reason, error });
      }),
    );
  }

  /**
   * Opens `path` (from the root: /v1/vms/web/console) on the daemon as a WebSocket; resolves
   * once it is open. Throws CORRAL_DAEMON_UNREACHABLE when it cannot be opened.
   */
  static open(target: ApiTarget, path: string, handlers: ApiSocketHandlers): Promise<ApiSocket> {
    const agent =
      "socket" in target
        ? new (undici().Agent)({ connect: { socketPath: target.socket } })
        : new (undici().Agent)();
    const base = "socket" in target ? "ws://localhost" : target.url.replace(/^http/, "ws");
    const socket = new (undici().WebSocket)(new URL(path, base).href, {
      dispatcher: agent,
      ...("token" in target && { headers: { authorization: `Bearer ${target.token}` } }),
    });
    socket.binaryType = "arraybuffer";
    const api = new ApiSocket(socket, agent, handlers);
    return new Promise((resolve, reject) => {
      socket.addEventListener("open", () => resolve(api), { once: true });
      socket.addEventListener(
        "error",
        () => {
          void agent.close();
          reject(
            new CorralError(
              ErrorCodes.DAEMON_UNREACHABLE,
              `cannot open the WebSocket ${path} on ${"socket" in target ? target.socket : target.url}: no daemon answers, or it refused the upgrade`,
            ),
          );
        },
        { once: true },
      );
    });
  }

  /** Sends `frame` as a JSON text frame (nothing once the socket is closing). */
  send(frame: object): void {
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.send(JSON.stringify(frame));
  }

  /** Sends bytes as a binary frame. */
  sendBytes(chunk: Buffer): void {
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.send(chunk);
  }

  close(code = 1000): void {
    this.#socket.close(code);
  }

  /** Drops the connection at once (the daemon sees it closed). */
  destroy(): void {
    void this.#agent.destroy();
  }
}

/** The ApiError an `error` frame carries. */
function errorOf(frame: Record<string, unknown>): ApiError {
  const given = String(frame.code);
  const code = (
    (Object.values(ErrorCodes) as string[]).includes(given) ? given : ErrorCodes.INTERNAL
  ) as ErrorCode;
  return new ApiError(
    httpStatus(code),
    code,
    String(frame.message),
    Array.isArray(frame.details) ? frame.details.map(String) : [],
  );
}
