// A fake Firecracker API server on a unix socket, for the client's tests: it is not Firecracker.
// It checks every request against the official spec (specs/firecracker.yaml; a rejected body
// gets 400 as Firecracker's own deserializer answers) and follows the documented state rules:
// pre-boot-only resources are refused after InstanceStart, post-boot-only ones before it, a
// snapshot is taken only when paused, and a snapshot loads only into a fresh process
// (nothing configured but the logger and metrics). Refusals use Firecracker's own messages
// (vmm/src/rpc_interface.rs) where it has one; the snapshot-not-paused one is this fake's.

import { once } from "node:events";
import { readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { loadSpec } from "../helpers/vmm-spec.ts";

export const POST_BOOT = "The requested operation is not supported after starting the microVM.";
export const PRE_BOOT = "The requested operation is not supported before starting the microVM.";
export const LOAD_NOT_ALLOWED =
  "Loading a microVM snapshot not allowed after configuring boot-specific resources.";
export const NOT_PAUSED = "fake: Cannot create a snapshot: the microVM must be paused";

type State = "Not started" | "Running" | "Paused";

/** Resources that only a VM not yet started accepts (the spec's "Pre-boot only"). */
const PRE_BOOT_ONLY = [
  "PUT /boot-source",
  "PUT /machine-config",
  "PATCH /machine-config",
  "PUT /cpu-config",
  "PUT /drives/",
  "PUT /network-interfaces/",
  "PUT /vsock",
  "PUT /balloon",
  "PUT /serial",
  "PUT /entropy",
];
/** Requests a started VM only accepts (the spec's "Post-boot only", and pausing). */
const POST_BOOT_ONLY = [
  "PATCH /vm",
  "PUT /snapshot/create",
  "PATCH /drives/",
  "PATCH /network-interfaces/",
];

export interface FakeRequest {
  method: string;
  path: string;
  body: unknown;
  status: number;
  reply: unknown;
}

export class FakeFirecracker {
  readonly socketPath: string;
  /** Every request and the fake's answer, in order. */
  readonly log: FakeRequest[] = [];
  state: State = "Not started";
  readonly config: Record<string, unknown> = {};
  readonly #server: Server;
  /** Something other than the logger and metrics was configured: no snapshot load any more. */
  #isConfigured = false;

  private constructor(socketPath: string, server: Server) {
    this.socketPath = socketPath;
    this.#server = server;
  }

  /** Called after each answer (the fake VMM process reacts to boots and shutdowns). */
  onAnswered: ((entry: FakeRequest) => void) | undefined;

  static async listen(socketPath: string): Promise<FakeFirecracker> {
    await rm(socketPath, { force: true });
    let fake: FakeFirecracker | undefined;
    const server = createServer((request, response) => void fake?.handle(request, response));
    fake = new FakeFirecracker(socketPath, server);
    server.listen(socketPath);
    await once(server, "listening");
    return fake;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? "GET";
    const path = request.url ?? "/";
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch (error) {
      return this.#answer(
        response,
        { method, path, body: text },
        400,
        fault((error as Error).message),
      );
    }
    const [status, reply] = await this.#apply(method, path, body);
    this.#answer(response, { method, path, body }, status, reply);
  }

  #answer(
    response: ServerResponse,
    request: { method: string; path: string; body: unknown },
    status: number,
    reply: unknown,
  ): void {
    const entry = { ...request, status, reply };
    this.log.push(entry);
    response.writeHead(status, reply === undefined ? {} : { "content-type": "application/json" });
    response.end(reply === undefined ? undefined : JSON.stringify(reply));
    this.onAnswered?.(entry);
  }

  async #apply(method: string, path: string, body: unknown): Promise<[number, unknown]> {
    const problem = loadSpec("firecracker").requestProblem(method, path, body);
    if (problem) return [400, fault(`fake: the spec rejects this request: ${problem}`)];
    const key = `${method} ${path}`;
    const isStarted = this.state !== "Not started";
    if (isStarted && PRE_BOOT_ONLY.some((prefix) => key.startsWith(prefix))) {
      return [400, fault(POST_BOOT)];
    }
    if (!isStarted && POST_BOOT_ONLY.some((prefix) => key.startsWith(prefix))) {
      return [400, fault(PRE_BOOT)];
    }
    const fields = (body ?? {}) as Record<string, unknown>;
    if (method === "GET") return this.#get(path);
    if (key === "PUT /actions") {
      if (fields.action_type === "SendCtrlAltDel" && !isStarted) return [400, fault(PRE_BOOT)];
      if (fields.action_type !== "InstanceStart") return [204, undefined];
      if (isStarted) return [400, fault(POST_BOOT)];
      if (!this.config["boot-source"]) {
        return [400, fault("Cannot start microvm without kernel configuration.")];
      }
      this.state = "Running";
      return [204, undefined];
    }
    if (key === "PATCH /vm") {
      this.state = fields.state === "Paused" ? "Paused" : "Running";
      return [204, undefined];
    }
    if (key === "PUT /snapshot/create") {
      if (this.state !== "Paused") return [400, fault(NOT_PAUSED)];
      const saved = JSON.stringify({ config: this.config });
      await writeFile(fields.snapshot_path as string, saved);
      await writeFile(fields.mem_file_path as string, "fake guest memory");
      return [204, undefined];
    }
    if (key === "PUT /snapshot/load") return this.#load(fields);
    if (key === "PATCH /balloon" && !this.config.balloon) {
      return [400, fault("fake: Balloon device not configured.")];
    }
    if (key !== "PUT /logger" && key !== "PUT /metrics") this.#isConfigured = true;
    this.config[path.slice(1)] = body;
    return [204, undefined];
  }

  #get(path: string): [number, unknown] {
    if (path === "/") {
      return [
        200,
        { app_name: "Firecracker", id: "fake", state: this.state, vmm_version: "1.17.0-fake" },
      ];
    }
    if (path === "/version") return [200, { firecracker_version: "1.17.0-fake" }];
    if (path === "/machine-config") {
      return [200, this.config["machine-config"] ?? { vcpu_count: 1, mem_size_mib: 128 }];
    }
    if (path === "/balloon") {
      return this.config.balloon
        ? [200, this.config.balloon]
        : [400, fault("fake: Balloon device not configured.")];
    }
    if (path === "/balloon/statistics") {
      const balloon = this.config.balloon as { amount_mib: number } | undefined;
      if (!balloon) return [400, fault("fake: Balloon device not configured.")];
      const pages = balloon.amount_mib * 256;
      return [
        200,
        {
          target_pages: pages,
          actual_pages: pages,
          target_mib: balloon.amount_mib,
          actual_mib: balloon.amount_mib,
        },
      ];
    }
    return [400, fault(`fake: no GET ${path}`)];
  }

  async #load(fields: Record<string, unknown>): Promise<[number, unknown]> {
    if (this.#isConfigured || this.state !== "Not started") return [400, fault(LOAD_NOT_ALLOWED)];
    let saved: { config: Record<string, unknown> };
    try {
      saved = JSON.parse(await readFile(fields.snapshot_path as string, "utf8"));
    } catch (error) {
      return [400, fault(`fake: Cannot open snapshot file: ${(error as Error).message}`)];
    }
    Object.assign(this.config, saved.config);
    this.#isConfigured = true;
    this.state = fields.resume_vm ? "Running" : "Paused";
    return [204, undefined];
  }
}

function fault(message: string): { fault_message: string } {
  return { fault_message: message };
}
