// A child process in its own process group, watched so that nothing outlives corral.

import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { once } from "node:events";
import { releaseGroup, watchGroup } from "./watchdog.ts";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnSupervisedOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  stdio?: SpawnOptions["stdio"];
}

/** Owns one process group: stop() or dispose ends every process in it. */
export class SupervisedProcess implements AsyncDisposable {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Settles when the group leader has exited; never rejects. */
  readonly exited: Promise<ExitInfo>;
  #exitInfo: ExitInfo | undefined;
  #stopping: Promise<ExitInfo> | undefined;

  private constructor(child: ChildProcess, pid: number) {
    this.child = child;
    this.pid = pid;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exitInfo = { code, signal };
        // Any helper the leader left behind in its group goes with it.
        killGroup(pid, "SIGKILL");
        releaseGroup(pid);
        resolve(this.#exitInfo);
      });
    });
  }

  /** Spawns `file args…` as the leader of a new process group and starts watching it. */
  static async spawn(
    file: string,
    args: readonly string[],
    options: SpawnSupervisedOptions = {},
  ): Promise<SupervisedProcess> {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: options.stdio ?? ["ignore", "pipe", "pipe"],
      detached: true,
    });
    if (child.pid === undefined) {
      const [error] = (await once(child, "error")) as [Error];
      throw error;
    }
    watchGroup(child.pid);
    return new SupervisedProcess(child, child.pid);
  }

  get hasExited(): boolean {
    return this.#exitInfo !== undefined;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  /** Sends `signal` to the whole group. */
  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (!this.hasExited) killGroup(this.pid, signal);
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the leader is gone. Idempotent. */
  stop(graceMs = 3000): Promise<ExitInfo> {
    this.#stopping ??= stopWithGrace(this, graceMs);
    return this.#stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** SIGTERM to `target`, SIGKILL after `graceMs` if it has not exited; resolves once it has. */
export async function stopWithGrace(
  target: { readonly exited: Promise<ExitInfo>; kill(signal: NodeJS.Signals): void },
  graceMs: number,
): Promise<ExitInfo> {
  target.kill("SIGTERM");
  const force = setTimeout(() => target.kill("SIGKILL"), graceMs);
  const info = await target.exited;
  clearTimeout(force);
  return info;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is already empty
  }
}
