// A process that runs on its own, outside corral's process tree: started in a session of its own
// with no watchdog (a persistent VM's VMM), or found again by pid in another corral process. It
// is known by its pid and its start time, so a reused pid is never taken for it.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { type ExitInfo, stopWithGrace } from "./supervised-process.ts";

/** Who a detached process is: its pid and its start time in clock ticks since boot. */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

export interface SpawnDetachedOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** File descriptors for stdin, stdout, stderr and beyond (files, not pipes: corral may go). */
  stdio: (number | "ignore")[];
}

const EXIT_POLL_MS = 50;

export class DetachedProcess {
  readonly identity: ProcessIdentity;
  /** Settles once the process has ended; never rejects. */
  readonly exited: Promise<ExitInfo>;
  #exitInfo: ExitInfo | undefined;
  #stopping: Promise<ExitInfo> | undefined;

  private constructor(identity: ProcessIdentity, exited: Promise<ExitInfo>) {
    this.identity = identity;
    this.exited = exited.then((info) => {
      this.#exitInfo = info;
      return info;
    });
  }

  /** Starts `file args…` in a session of its own; it goes on when corral exits. */
  static async spawn(
    file: string,
    args: readonly string[],
    options: SpawnDetachedOptions,
  ): Promise<DetachedProcess> {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: options.stdio,
      detached: true,
    });
    if (child.pid === undefined) {
      const [error] = (await once(child, "error")) as [Error];
      throw error;
    }
    const pid = child.pid;
    const exited = new Promise<ExitInfo>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    child.unref();
    return new DetachedProcess({ pid, startTime: readStat(pid)?.startTime ?? 0 }, exited);
  }

  /**
   * The process `identity` if it still runs, else undefined. Its exit is seen by polling, once
   * the last of its threads has gone (and with it its files, sockets and disk locks).
   */
  static find(identity: ProcessIdentity): DetachedProcess | undefined {
    if (!isRunning(identity)) return undefined;
    const exited = (async (): Promise<ExitInfo> => {
      while (!hasEnded(identity)) await sleep(EXIT_POLL_MS, undefined, { ref: false });
      return { code: null, signal: null };
    })();
    return new DetachedProcess(identity, exited);
  }

  get pid(): number {
    return this.identity.pid;
  }

  get hasExited(): boolean {
    return this.#exitInfo !== undefined;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  /** Sends `signal` to the process, if it is still the one it was. */
  kill(signal: NodeJS.Signals): void {
    if (this.hasExited || !isRunning(this.identity)) return;
    try {
      process.kill(this.identity.pid, signal);
    } catch {
      // it has just exited
    }
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once it is gone. Idempotent. */
  stop(graceMs = 3000): Promise<ExitInfo> {
    this.#stopping ??= stopWithGrace(this, graceMs);
    return this.#stopping;
  }
}

/**
 * Whether the process `identity` runs: its pid is alive, started when it did, and is not on its
 * way out (a zombie, or PF_EXITING among its flags: a killed QEMU can take seconds to close its
 * sockets on a loaded host, and a QMP dial in that time would be accepted and then closed).
 */
export function isRunning(identity: ProcessIdentity): boolean {
  const stat = readStat(identity.pid);
  return (
    stat !== undefined &&
    isSameStart(identity, stat) &&
    stat.state !== "Z" &&
    stat.state !== "X" &&
    (stat.flags & PF_EXITING) === 0
  );
}

/** Whether the process `identity` is gone for good: no thread of it is left. */
function hasEnded(identity: ProcessIdentity): boolean {
  const stat = readStat(identity.pid);
  if (stat === undefined || !isSameStart(identity, stat)) return true;
  // A zombie leader waits for its other threads, which still hold the process's files.
  return (stat.state === "Z" || stat.state === "X") && threadCount(identity.pid) <= 1;
}

// The kernel's PF_EXITING task flag: set as the process begins to exit, before it drops its memory
// (and so its command line) and long before the last of its threads closes its files.
const PF_EXITING = 0x4;

interface ProcessStat {
  /** Field 3: R, S, D, Z, X… */
  state: string;
  /** Field 9: the kernel's task flags. */
  flags: number;
  /** Field 22: start time since boot, in clock ticks. */
  startTime: number;
}

function isSameStart(identity: ProcessIdentity, stat: ProcessStat): boolean {
  return identity.startTime === 0 || stat.startTime === identity.startTime;
}

/**
 * What /proc/<pid>/stat says of pid `pid`; undefined when there is no such pid. The command name
 * (field 2) may hold spaces and parentheses, so fields are counted after its last ")".
 */
function readStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(fields[19]);
  if (!Number.isFinite(startTime)) return undefined;
  return { state: fields[0] ?? "", flags: Number(fields[6]), startTime };
}

/** How many threads pid `pid` has left (0 when it is gone). */
function threadCount(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/^Threads:\s*(\d+)/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}
