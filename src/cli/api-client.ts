// The CLI's client of `corral serve`: JSON over the unix socket (CORRAL_SOCKET overrides its
// path) or over TCP with the bearer token; error bodies come back as CorralErrors.

import { Client, type Dispatcher } from "undici";
import { AbortedError, CorralError, type ErrorCode, ErrorCodes } from "../errors.ts";
import { defaultSocketPath } from "../host/paths.ts";

/** Where the daemon is: its unix socket, or a TCP URL and the token it wants. */
export type ApiTarget = { socket: string } | { url: string; token: string };

export interface ApiRequestOptions {
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
}

/** The unix socket of `CORRAL_SOCKET`, else the daemon's default one. */
export function defaultApiTarget(env: NodeJS.ProcessEnv = process.env): ApiTarget {
  return { socket: env.CORRAL_SOCKET || defaultSocketPath(env) };
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

export class ApiClient implements AsyncDisposable {
  readonly target: ApiTarget;
  readonly #client: Client;
  readonly #headers: Record<string, string>;

  constructor(target: ApiTarget = defaultApiTarget()) {
    this.target = target;
    this.#client =
      "socket" in target
        ? new Client("http://localhost", { socketPath: target.socket })
        : new Client(target.url);
    this.#headers = "token" in target ? { authorization: `Bearer ${target.token}` } : {};
  }

  /**
   * Sends one request (`path` from the root: `/v1/health`) and returns the parsed JSON answer.
   * Throws the daemon's error as a CorralError with its code, CORRAL_DAEMON_UNREACHABLE when no
   * daemon answers, CORRAL_ABORTED when `signal` fires.
   */
  async request<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    options: ApiRequestOptions = {},
  ): Promise<T> {
    const hasBody = options.body !== undefined;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#client.request({
        method,
        path,
        headers: hasBody ? { ...this.#headers, "content-type": "application/json" } : this.#headers,
        ...(hasBody && { body: JSON.stringify(options.body) }),
        ...(options.signal && { signal: options.signal }),
      });
    } catch (error) {
      throw this.#connectionError(error, `${method} ${path}`);
    }
    const text = await response.body.text();
    if (response.statusCode >= 400)
      throw errorFromBody(response.statusCode, text, `${method} ${path}`);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  close(): Promise<void> {
    return this.#client.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #connectionError(error: unknown, what: string): CorralError {
    if ((error as Error).name === "AbortError") {
      return new AbortedError(`${what}: aborted`, { cause: error });
    }
    const code = (error as NodeJS.ErrnoException).code;
    const where = "socket" in this.target ? this.target.socket : this.target.url;
    if (code === "ENOENT" || code === "ECONNREFUSED") {
      return new CorralError(
        ErrorCodes.DAEMON_UNREACHABLE,
        `no corral daemon at ${where}: start one with \`corral serve\``,
        { cause: error },
      );
    }
    if (code === "EACCES") {
      return new CorralError(
        ErrorCodes.DAEMON_UNREACHABLE,
        `cannot connect to ${where}: permission denied (the socket is the daemon's user's alone)`,
        { cause: error },
      );
    }
    return new CorralError(
      ErrorCodes.DAEMON_UNREACHABLE,
      `${what} to ${where} failed: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The CorralError that an error answer describes; one that is not ours says what came back. */
function errorFromBody(status: number, text: string, what: string): CorralError {
  let body: { code?: unknown; message?: unknown; details?: unknown } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (typeof body?.code === "string" && typeof body.message === "string") {
    const details = Array.isArray(body.details) ? body.details.map(String) : [];
    if (KNOWN_CODES.has(body.code)) {
      return new CorralError(body.code as ErrorCode, body.message, { details });
    }
    return new CorralError(ErrorCodes.INTERNAL, `${body.code}: ${body.message}`, { details });
  }
  return new CorralError(
    ErrorCodes.INTERNAL,
    `${what}: HTTP ${status} without a corral error body: ${text.slice(0, 200)}`,
  );
}
