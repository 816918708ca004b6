// A manager daemon inside a network namespace the test made (netns.ts): `startDaemon` in a child
// process run with `ip netns exec`, so that its bridges, dnsmasq, firewall and QEMU's TAPs live
// there and the host's network is never touched. Calls go to its unix socket (the filesystem is
// shared); guest commands go through the daemon's own Machines over the child's IPC channel.
// It can be killed (SIGKILL) and started again on the same state folder.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DaemonConfig } from "../../src/server/config.ts";
import { type Api, apiOn } from "./manager.ts";
import type { Netns } from "./netns.ts";
import type { ChildMessage, ExecRequest } from "./netns-daemon-child.ts";

const CHILD = fileURLToPath(new URL("./netns-daemon-child.ts", import.meta.url));

export interface GuestResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class NetnsDaemon {
  readonly config: DaemonConfig;
  readonly api: Api;
  readonly #netns: Netns;
  #child: ChildProcess | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, (message: ChildMessage) => void>();

  /** A daemon on `dir` (its state, socket and dnsmasq folders; `dir` must be o+x), not started. */
  constructor(netns: Netns, dir: string) {
    this.#netns = netns;
    this.config = {
      stateDir: join(dir, "state"),
      templatesDir: join(dir, "templates"),
      socket: join(dir, "corral.sock"),
      listen: undefined,
      logLevel: "warn",
      limits: { maxVms: 16, maxUploadBytes: 4 * 2 ** 30 },
      networks: { mode: "auto", runDir: join(dir, "networks") },
    };
    this.api = apiOn(this.config.socket);
  }

  /** Starts the daemon in the namespace; resolves once it answers. */
  async start(): Promise<void> {
    const child = spawn(
      "ip",
      ["netns", "exec", this.#netns.name, process.execPath, CHILD, JSON.stringify(this.config)],
      { stdio: ["ignore", "inherit", "inherit", "ipc"] },
    );
    this.#child = child;
    child.on("message", (message: ChildMessage) => {
      if ("id" in message) {
        this.#pending.get(message.id)?.(message);
        this.#pending.delete(message.id);
      }
    });
    const [first] = (await Promise.race([
      once(child, "message"),
      once(child, "exit").then(([code]) => [{ ready: false, error: `exited with ${code}` }]),
    ])) as [ChildMessage];
    if (!("ready" in first) || !first.ready) {
      throw new Error(`the daemon did not start: ${"error" in first ? first.error : "?"}`);
    }
  }

  /** Runs `command` in VM `vm`'s guest through the daemon. */
  exec(vm: string, command: string, timeoutMs = 60_000): Promise<GuestResult> {
    const child = this.#child;
    if (!child?.connected) return Promise.reject(new Error("the daemon does not run"));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (message) => {
        if ("error" in message) reject(new Error(`${vm}: ${command}: ${message.error}`));
        else resolve(message as GuestResult);
      });
      child.send({ id, vm, command, timeoutMs } satisfies ExecRequest);
    });
  }

  /** Runs `command` in VM `vm`'s guest; its stdout, or an error with its output if it fails. */
  async succeed(vm: string, command: string, timeoutMs?: number): Promise<string> {
    const result = await this.exec(vm, command, timeoutMs);
    if (result.exitCode !== 0) {
      throw new Error(
        `${vm}: ${command}: exit ${result.exitCode}\n${result.stdout}${result.stderr}`,
      );
    }
    return result.stdout;
  }

  /** Ends the daemon: SIGTERM (a clean stop; VMs run on) or SIGKILL (a crash). */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }
}
