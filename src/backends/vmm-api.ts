// JSON over HTTP on a VMM's API unix socket (Firecracker's `--api-sock`, Cloud Hypervisor's
// `--api-socket`), with undici: one request at a time per call, a deadline each, and error
// answers turned into VmmApiErrors that carry the VMM's own words.

import type { Client } from "undici";
import type { Deadline } from "../deadline.ts";
import { CorralError, type ErrorCode, ErrorCodes } from "../errors.ts";
import { undici } from "../host/undici.ts";

export type HttpMethod = "GET" | "PUT" | "PATCH";

/** One request as it goes on the wire: what the contract tests check against the spec. */
export interface VmmRequest {
  method: HttpMethod;
  /** The path after the API's base path (`/boot-source`, `/vm.create`). */
  path: string;
  /** Sent as JSON; undefined: no body. */
  body?: unknown;
}

/** An answer that is not a success: the HTTP status and the body the VMM sent. */
export interface VmmReply {
  status: number;
  body: unknown;
  text: string;
}

/** An error answer of a VMM's API, or no answer; `code` says whether the VM's state was the cause. */
export class VmmApiError extends CorralError {
  readonly vmm: string;
  readonly method: HttpMethod;
  readonly path: string;
  /** The HTTP status; undefined when the socket did not answer. */
  readonly status: number | undefined;
  /** The VMM's own message (Firecracker's `fault_message`, Cloud Hypervisor's body). */
  readonly vmmMessage: string;
  constructor(
    code: ErrorCode,
    fields: {
      vmm: string;
      request: VmmRequest;
      status: number | undefined;
      vmmMessage: string;
      cause?: unknown;
      machine?: string | undefined;
    },
  ) {
    const { vmm, request, status, vmmMessage } = fields;
    const answer = status === undefined ? "no answer" : `HTTP ${status}`;
    super(code, `${vmm} refused ${request.method} ${request.path} (${answer}): ${vmmMessage}`, {
      cause: fields.cause,
      ...(fields.machine !== undefined ? { machine: fields.machine } : {}),
    });
    this.vmm = vmm;
    this.method = request.method;
    this.path = request.path;
    this.status = status;
    this.vmmMessage = vmmMessage;
  }
}

export interface VmmApiOptions {
  /** The VMM's name in messages ("Firecracker"). */
  vmm: string;
  /** The API socket's path. */
  socketPath: string;
  /** Prefix of every path: `/api/v1` for Cloud Hypervisor, "" for Firecracker. */
  basePath: string;
  /** The error code of an error answer: CONFLICT when the VM's state refused it. */
  classify(request: VmmRequest, status: number, message: string): ErrorCode;
  /** The VMM's message in an error body. */
  messageOf(body: unknown, text: string): string;
  machine?: string | undefined;
}

/** A VMM's HTTP API on its unix socket. close() is idempotent. */
export class VmmApi {
  readonly #options: VmmApiOptions;
  readonly #client: Client;
  /** Every request sent, in order, when recording is on (contract tests read it). */
  readonly sent: VmmRequest[] | undefined;

  constructor(options: VmmApiOptions & { record?: boolean }) {
    this.#options = options;
    this.#client = new (undici().Client)("http://localhost", {
      socketPath: options.socketPath,
      // One VMM answers one request at a time; undici's keep-alive reuses the connection.
      pipelining: 1,
    });
    this.sent = options.record ? [] : undefined;
  }

  get socketPath(): string {
    return this.#options.socketPath;
  }

  /** Sends `request`; the parsed JSON reply (undefined for 204). Throws VmmApiError. */
  async call<T = undefined>(deadline: Deadline, request: VmmRequest): Promise<T> {
    this.sent?.push(request);
    const { vmm } = this.#options;
    const hasBody = request.body !== undefined;
    let reply: VmmReply;
    try {
      const response = await deadline.race(
        this.#client.request({
          method: request.method,
          path: `${this.#options.basePath}${request.path}`,
          headers: {
            accept: "application/json",
            ...(hasBody ? { "content-type": "application/json" } : {}),
          },
          body: hasBody ? JSON.stringify(request.body) : undefined,
          signal: deadline.signal,
        }),
      );
      const text = await response.body.text();
      reply = { status: response.statusCode, text, body: parseJson(text) };
    } catch (error) {
      if (error instanceof CorralError) throw error;
      throw new VmmApiError(ErrorCodes.VMM_API_ERROR, {
        vmm,
        request,
        status: undefined,
        vmmMessage: `its API socket ${this.#options.socketPath} did not answer: ${(error as Error).message}`,
        cause: error,
        machine: this.#options.machine,
      });
    }
    if (reply.status >= 200 && reply.status < 300) return reply.body as T;
    const message = this.#options.messageOf(reply.body, reply.text) || `HTTP ${reply.status}`;
    throw new VmmApiError(this.#options.classify(request, reply.status, message), {
      vmm,
      request,
      status: reply.status,
      vmmMessage: message,
      machine: this.#options.machine,
    });
  }

  close(): void {
    void this.#client.close().catch(() => undefined);
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
