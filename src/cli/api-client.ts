// The CLI's client of `corral serve`: JSON over the unix socket (CORRAL_SOCKET overrides its
// path) or over TCP with the bearer token (CORRAL_URL, CORRAL_TOKEN); error bodies come back as
// ApiErrors, server-sent event streams as async iterables.

import { Readable } from "node:stream";
import type { Client, Dispatcher } from "undici";
import { AbortedError, CorralError, type ErrorCode, ErrorCodes } from "../errors.ts";
import { defaultSocketPath } from "../host/paths.ts";
import { undici } from "../host/undici.ts";

/** Where the daemon is: its unix socket, or a TCP URL and the token it wants. */
export type ApiTarget = { socket: string } | { url: string; token: string };

export interface ApiRequestOptions {
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
  /** How long to wait for the answer's headers; default undici's 300 s, 0 for no limit. */
  headersTimeoutMs?: number;
}

/** One server-sent event: its id, its type (`event:`, "message" by default) and its data. */
export interface ServerSentEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** An error answer of the daemon: its code, message and details, and the HTTP status. */
export class ApiError extends CorralError {
  readonly status: number;
  /** The message without the details. */
  readonly summary: string;
  constructor(status: number, code: ErrorCode, summary: string, details: readonly string[]) {
    super(code, summary, { details });
    this.status = status;
    this.summary = summary;
  }
}

/** The unix socket of `CORRAL_SOCKET`, else the daemon's default one. */
export function defaultApiTarget(env: NodeJS.ProcessEnv = process.env): ApiTarget {
  return { socket: env.CORRAL_SOCKET || defaultSocketPath(env) };
}

/**
 * Where the CLI finds the daemon: `--url` (with the token in CORRAL_TOKEN) or `--socket`, else
 * CORRAL_URL (and CORRAL_TOKEN), else defaultApiTarget(). Throws CORRAL_INVALID_ARGUMENT for both
 * flags at once, or a URL without a token.
 */
export function apiTarget(
  flags: { socket?: string | undefined; url?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): ApiTarget {
  if (flags.socket !== undefined && flags.url !== undefined) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      "give either --socket (the unix socket) or --url (TCP), not both",
    );
  }
  if (flags.socket !== undefined) return { socket: flags.socket };
  const url = flags.url ?? (env.CORRAL_URL || undefined);
  if (url === undefined) return defaultApiTarget(env);
  const token = env.CORRAL_TOKEN;
  if (!token) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `the daemon at ${url} needs its bearer token: set CORRAL_TOKEN (\`corral serve token\` on the daemon's host prints it)`,
    );
  }
  return { url, token };
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

export class ApiClient implements AsyncDisposable {
  readonly target: ApiTarget;
  readonly #client: Client;
  readonly #headers: Record<string, string>;

  constructor(target: ApiTarget = defaultApiTarget()) {
    this.target = target;
    const { Client } = undici();
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
        ...(options.headersTimeoutMs !== undefined && {
          headersTimeout: options.headersTimeoutMs,
        }),
      });
    } catch (error) {
      throw this.#connectionError(error, `${method} ${path}`);
    }
    const text = await response.body.text();
    if (response.statusCode >= 400)
      throw errorFromBody(response.statusCode, text, `${method} ${path}`);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /**
   * Follows the server-sent events at `path` until the daemon ends the stream or `signal` fires
   * (then it just ends). Throws like request() when the daemon refuses the request.
   */
  async *events(
    path: string,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<ServerSentEvent> {
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#client.request({
        method: "GET",
        path,
        headers: { ...this.#headers, accept: "text/event-stream" },
        // A quiet stream is not a dead one: no limit on the wait for the next event.
        headersTimeout: 0,
        bodyTimeout: 0,
        ...(options.signal && { signal: options.signal }),
      });
    } catch (error) {
      if (options.signal?.aborted) return;
      throw this.#connectionError(error, `GET ${path}`);
    }
    if (response.statusCode >= 400) {
      throw errorFromBody(response.statusCode, await response.body.text(), `GET ${path}`);
    }
    try {
      yield* parseEventStream(response.body);
    } catch (error) {
      if (options.signal?.aborted) return;
      throw this.#connectionError(error, `GET ${path}`);
    }
  }

  /**
   * Sends `body` as the bytes of a `method` request (a PUT of a file) with `headers`, and returns
   * the parsed JSON answer; throws like request().
   */
  async upload<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    body: AsyncIterable<Uint8Array>,
    options: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<T> {
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#client.request({
        method,
        path,
        headers: {
          ...this.#headers,
          "content-type": "application/octet-stream",
          ...options.headers,
        },
        body: Readable.from(body),
        ...(options.signal && { signal: options.signal }),
      });
    } catch (error) {
      throw this.#connectionError(error, `${method} ${path}`);
    }
    const text = await response.body.text();
    if (response.statusCode >= 400) {
      throw errorFromBody(response.statusCode, text, `${method} ${path}`);
    }
    return JSON.parse(text) as T;
  }

  /** The status and headers of a HEAD of `path` (an error's status too: HEAD answers have no body). */
  async head(
    path: string,
  ): Promise<{ status: number; headers: Dispatcher.ResponseData["headers"] }> {
    try {
      const response = await this.#client.request({ method: "HEAD", path, headers: this.#headers });
      await response.body.dump();
      return { status: response.statusCode, headers: response.headers };
    } catch (error) {
      throw this.#connectionError(error, `HEAD ${path}`);
    }
  }

  /**
   * GETs `path` as bytes: its headers, its body, and (once the body is read) its trailers.
   * Throws like request() when the daemon answers with an error.
   */
  async download(
    path: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{
    headers: Record<string, string | string[] | undefined>;
    body: AsyncIterable<Buffer>;
    trailers: Record<string, string | string[] | undefined>;
  }> {
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#client.request({
        method: "GET",
        path,
        headers: this.#headers,
        ...(options.signal && { signal: options.signal }),
      });
    } catch (error) {
      throw this.#connectionError(error, `GET ${path}`);
    }
    if (response.statusCode >= 400) {
      throw errorFromBody(response.statusCode, await response.body.text(), `GET ${path}`);
    }
    return { headers: response.headers, body: response.body, trailers: response.trailers };
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

/** Server-sent events from the chunks of a `text/event-stream` body (the WHATWG format). */
async function* parseEventStream(chunks: AsyncIterable<Buffer>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffered = "";
  let event: ServerSentEvent = { id: undefined, event: "message", data: "" };
  let hasData = false;
  for await (const chunk of chunks) {
    buffered += decoder.decode(chunk, { stream: true });
    const lines = buffered.split(/\r\n|\r|\n/);
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (hasData) yield event;
        event = { id: event.id, event: "message", data: "" };
        hasData = false;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") {
        event.data = hasData ? `${event.data}\n${value}` : value;
        hasData = true;
      } else if (field === "event") {
        event.event = value;
      } else if (field === "id") {
        event.id = value;
      }
    }
  }
}

/** The ApiError that an error answer describes; one that is not ours says what came back. */
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
      return new ApiError(status, body.code as ErrorCode, body.message, details);
    }
    return new ApiError(status, ErrorCodes.INTERNAL, `${body.code}: ${body.message}`, details);
  }
  return new ApiError(
    status,
    ErrorCodes.INTERNAL,
    `${what}: HTTP ${status} without a corral error body: ${text.slice(0, 200)}`,
    [],
  );
}
