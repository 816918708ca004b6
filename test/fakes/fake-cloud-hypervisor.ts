// A fake Cloud Hypervisor API server on a unix socket, for the client's tests: it is not Cloud
// Hypervisor. It checks every request against the official spec (specs/cloud-hypervisor.yaml;
// a rejected body gets 400), and follows the VM's state machine of vmm/src/vm.rs
// (`VmState::valid_transition`) with the status codes the spec documents: 404 when no VM is
// created (or no such disk), 405 when the action is not allowed in the VM's state, 409 for a
// device id taken, and vm.restore only before vm.create. Error bodies are plain text.

import { once } from "node:events";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { loadSpec } from "../helpers/vmm-spec.ts";

type VmState = "Created" | "Running" | "Shutdown" | "Paused";

/** vm.rs `valid_transition` (BreakPoint left out: only the gdb stub reaches it). */
const TRANSITIONS: Record<VmState, readonly VmState[]> = {
  Created: ["Running", "Paused", "Shutdown"],
  Running: ["Paused", "Shutdown"],
  Shutdown: ["Running"],
  Paused: ["Running", "Shutdown"],
};

/** The state each action moves to, and the states that must hold (else 405). */
const ACTIONS: Record<string, { to: VmState; from: readonly VmState[] }> = {
  "/vm.boot": { to: "Running", from: ["Created", "Shutdown"] },
  "/vm.pause": { to: "Paused", from: ["Running"] },
  "/vm.resume": { to: "Running", from: ["Paused"] },
  "/vm.shutdown": { to: "Shutdown", from: ["Running", "Paused"] },
  "/vm.reboot": { to: "Running", from: ["Running"] },
  "/vm.power-button": { to: "Running", from: ["Running"] },
};

export interface FakeChRequest {
  method: string;
  path: string;
  body: unknown;
  status: number;
  reply: unknown;
}

export class FakeCloudHypervisor {
  readonly socketPath: string;
  readonly log: FakeChRequest[] = [];
  /** undefined: no VM created. */
  state: VmState | undefined;
  config: Record<string, unknown> | undefined;
  readonly #server: Server;

  private constructor(socketPath: string, server: Server) {
    this.socketPath = socketPath;
    this.#server = server;
  }

  /** Called after each answer (the fake VMM process reacts to boots and shutdowns). */
  onAnswered: ((entry: FakeChRequest) => void) | undefined;

  static async listen(socketPath: string): Promise<FakeCloudHypervisor> {
    await rm(socketPath, { force: true });
    let fake: FakeCloudHypervisor | undefined;
    const server = createServer((request, response) => void fake?.handle(request, response));
    fake = new FakeCloudHypervisor(socketPath, server);
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
    const url = request.url ?? "/";
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    const path = url.startsWith("/api/v1/") ? url.slice("/api/v1".length) : url;
    let status: number;
    let reply: unknown;
    try {
      const body = text === "" ? undefined : JSON.parse(text);
      [status, reply] = await this.#apply(method, path, body);
      this.log.push({ method, path, body, status, reply });
    } catch (error) {
      [status, reply] = [400, `fake: ${(error as Error).message}`];
      this.log.push({ method, path, body: text, status, reply });
    }
    const isText = typeof reply === "string";
    response.writeHead(status, {
      "content-type": isText ? "text/plain" : "application/json",
    });
    response.end(reply === undefined ? undefined : isText ? reply : JSON.stringify(reply));
    const entry = this.log.at(-1);
    if (entry) this.onAnswered?.(entry);
  }

  async #apply(method: string, path: string, body: unknown): Promise<[number, unknown]> {
    if (!url(path)) return [404, `fake: no such endpoint ${path}`];
    const problem = loadSpec("cloud-hypervisor").requestProblem(method, path, body);
    if (problem) return [400, `fake: the spec rejects this request: ${problem}`];
    const fields = (body ?? {}) as Record<string, unknown>;
    if (path === "/vmm.ping") return [200, { version: "v53.0-fake", pid: process.pid }];
    if (path === "/vmm.shutdown") return [204, undefined];
    if (path === "/vm.create") {
      if (this.config) return [400, "fake: VM already created"];
      this.config = fields;
      this.state = "Created";
      return [204, undefined];
    }
    if (path === "/vm.restore") {
      if (this.config) return [404, "fake: the VM is already created"];
      const folder = new URL(fields.source_url as string).pathname;
      try {
        this.config = JSON.parse(await readFile(join(folder, "config.json"), "utf8"));
      } catch (error) {
        return [400, `fake: cannot read the snapshot: ${(error as Error).message}`];
      }
      this.state = fields.resume ? "Running" : "Paused";
      return [204, undefined];
    }
    if (!this.config || !this.state) return [404, "fake: the VM is not created"];
    if (path === "/vm.info") return [200, { config: this.config, state: this.state }];
    if (path === "/vm.delete") {
      this.config = undefined;
      this.state = undefined;
      return [204, undefined];
    }
    const action = ACTIONS[path];
    if (action) {
      const allowed =
        action.from.includes(this.state) &&
        (action.to === this.state || TRANSITIONS[this.state].includes(action.to));
      if (!allowed) return [405, `fake: InvalidStateTransition(${this.state}, ${action.to})`];
      this.state = action.to;
      return [204, undefined];
    }
    if (path === "/vm.snapshot") {
      if (this.state !== "Paused") return [405, `fake: the VM is ${this.state}, not Paused`];
      const folder = new URL(fields.destination_url as string).pathname;
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, "config.json"), JSON.stringify(this.config));
      await writeFile(join(folder, "state.json"), JSON.stringify({ state: this.state }));
      await writeFile(join(folder, "memory-ranges"), "fake guest memory");
      return [204, undefined];
    }
    if (this.state !== "Running" && this.state !== "Paused") {
      return [405, `fake: the VM is ${this.state}`];
    }
    if (path === "/vm.resize") {
      const cpus = this.config.cpus as { boot_vcpus: number; max_vcpus: number } | undefined;
      if (
        typeof fields.desired_vcpus === "number" &&
        cpus &&
        fields.desired_vcpus > cpus.max_vcpus
      ) {
        return [500, `fake: vCPUs ${fields.desired_vcpus} exceed max_vcpus ${cpus.max_vcpus}`];
      }
      if (cpus && typeof fields.desired_vcpus === "number") cpus.boot_vcpus = fields.desired_vcpus;
      const memory = this.config.memory as { size: number } | undefined;
      if (memory && typeof fields.desired_ram === "number") memory.size = fields.desired_ram;
      return [204, undefined];
    }
    if (path === "/vm.resize-disk") {
      const disks = (this.config.disks ?? []) as { id?: string }[];
      return disks.some((disk) => disk.id === fields.id)
        ? [204, undefined]
        : [404, `fake: no disk ${String(fields.id)}`];
    }
    if (path.startsWith("/vm.add-")) return this.#add(path.slice("/vm.add-".length), fields);
    return [204, undefined];
  }

  #add(kind: string, fields: Record<string, unknown>): [number, unknown] {
    const config = this.config ?? {};
    const id = (fields.id as string | undefined) ?? `_${kind}${Object.keys(config).length}`;
    if (kind === "vsock") {
      if (config.vsock) return [409, "fake: the VM has a vsock device already"];
      config.vsock = fields;
      return [200, { id, bdf: "0000:00:07.0" }];
    }
    const key = CONFIG_LISTS[kind] ?? kind;
    const list = (config[key] ?? []) as { id?: string }[];
    if (fields.id !== undefined && list.some((device) => device.id === fields.id)) {
      return [409, `fake: a device with id ${id} exists`];
    }
    config[key] = [...list, fields];
    return [200, { id, bdf: "0000:00:06.0" }];
  }
}

/** The VmConfig list each `/vm.add-<kind>` adds to. */
const CONFIG_LISTS: Record<string, string> = { disk: "disks", device: "devices" };

function url(path: string): boolean {
  return path.startsWith("/vm.") || path.startsWith("/vmm.");
}
