// Starting an API-driven VMM (Firecracker, Cloud Hypervisor) in either ownership mode, and
// waiting for its API socket. Owned: a supervised process group whose stdout is the serial
// console and whose stdin is its input. Persistent: a detached process writing its console to
// `console.log` and its stderr to `vmm.stderr`, recorded in `vm.json` by the backend.

import { closeSync, fstatSync, openSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../deadline.ts";
import { CorralError, consoleTail, ErrorCodes } from "../errors.ts";
import { DetachedProcess } from "../host/detached-process.ts";
import { SupervisedProcess } from "../host/supervised-process.ts";
import type { VmRecord, VmSpec } from "./backend.ts";
import { ConsoleFollower } from "./console-follow.ts";
import type { ConsoleLog } from "./console-log.ts";
import { VSOCK_SOCKET } from "./micro-vm-spec.ts";
import type { VmmProcess } from "./qemu/qemu-vm.ts";
import { writeVmRecord } from "./vm-record.ts";

export const CONSOLE_LOG = "console.log";
export const STDERR_FILE = "vmm.stderr";
const STDERR_LINES_KEPT = 50;
const API_POLL_MS = 10;

export interface LaunchedVmm {
  process: VmmProcess;
  /** Set for a persistent VMM: who it is, for its record. */
  identity?: { pid: number; startTime: number };
  stderr: { lines: string[] } | { file: string };
  consoleInput: (text: string) => void;
  /** A persistent VMM's console log, followed into the ConsoleLog until stopped. */
  consoleFollower?: ConsoleFollower;
}

/** Runs `file args…` in `spec.stateDir` as the spec's ownership mode wants. */
export async function spawnVmm(
  spec: VmSpec,
  file: string,
  args: readonly string[],
  console: ConsoleLog,
): Promise<LaunchedVmm> {
  const env = { ...process.env, ...spec.env };
  if (spec.ownership === "owned") {
    const child = await SupervisedProcess.spawn(file, args, {
      cwd: spec.stateDir,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const lines: string[] = [];
    child.child.stdout?.on("data", (chunk: Buffer) => console.write(chunk));
    child.child.stdin?.on("error", () => {});
    keepLines(child.child.stderr, lines);
    return {
      process: child,
      stderr: { lines },
      consoleInput: (text) => void child.child.stdin?.write(text),
    };
  }
  const consoleLog = join(spec.stateDir, CONSOLE_LOG);
  const consoleFd = openSync(consoleLog, "a");
  // What an earlier run of the VM wrote is not this boot's console.
  const consoleStart = fstatSync(consoleFd).size;
  const stderrFile = join(spec.stateDir, STDERR_FILE);
  const stderrFd = openSync(stderrFile, "a");
  try {
    const detached = await DetachedProcess.spawn(file, args, {
      cwd: spec.stateDir,
      env,
      stdio: ["ignore", consoleFd, stderrFd],
    });
    return {
      process: detached,
      identity: detached.identity,
      stderr: { file: stderrFile },
      // A detached VMM's serial input is not connected: its console is a log file.
      consoleInput: () => undefined,
      consoleFollower: new ConsoleFollower(consoleLog, console, consoleStart),
    };
  } finally {
    closeSync(consoleFd);
    closeSync(stderrFd);
  }
}

/**
 * Calls `ping` until the VMM's API answers; fails when the VMM exits first (with its stderr) or
 * at the deadline. `vmm` names it in messages.
 */
export async function waitForApi(
  vmm: string,
  spec: VmSpec,
  launched: LaunchedVmm,
  ping: () => Promise<unknown>,
  deadline: Deadline,
): Promise<void> {
  for (;;) {
    const exit = launched.process.exitInfo;
    if (exit) {
      const stderr =
        "lines" in launched.stderr ? launched.stderr.lines : [`(see ${launched.stderr.file})`];
      throw new CorralError(
        ErrorCodes.MACHINE_START_FAILED,
        `${spec.name}: ${vmm} exited (code ${exit.code}, signal ${exit.signal}) before its API answered`,
        { machine: spec.name, details: [...stderr.slice(-10).map((l) => `  | ${l}`)] },
      );
    }
    try {
      await ping();
      return;
    } catch (error) {
      if (deadline.signal.aborted) throw deadline.error([String(error)]);
      await sleep(API_POLL_MS);
    }
  }
}

/**
 * Stops a VMM whose start failed half-way and removes the sockets it made (`sockets`, in
 * `stateDir`); throws the error, with the console's tail when it is not a CorralError.
 */
export async function abandon(
  launched: LaunchedVmm,
  console: ConsoleLog,
  error: unknown,
  cleanup: { stateDir: string; sockets: readonly string[] },
): Promise<never> {
  launched.process.kill("SIGKILL");
  await launched.process.stop();
  await launched.consoleFollower?.stop();
  await removeStale(cleanup.stateDir, cleanup.sockets);
  if (error instanceof CorralError) throw error;
  throw new CorralError(ErrorCodes.MACHINE_START_FAILED, String((error as Error)?.message), {
    cause: error,
    details: consoleTail(console.lines),
  });
}

/**
 * Configures and boots a launched VMM through its API (`configure`); a failure abandons it
 * (`close` ends the API client first). A persistent VMM is then recorded: its record returned.
 */
export async function configureVmm(
  backend: string,
  spec: VmSpec,
  launched: LaunchedVmm,
  console: ConsoleLog,
  api: { socket: string; close: () => void },
  configure: () => Promise<void>,
): Promise<VmRecord | undefined> {
  try {
    await configure();
  } catch (error) {
    api.close();
    return abandon(launched, console, error, {
      stateDir: spec.stateDir,
      sockets: [api.socket, VSOCK_SOCKET],
    });
  }
  return spec.ownership === "persistent"
    ? recordVmm(backend, spec, launched, api.socket)
    : undefined;
}

/** Removes stale sockets a previous run left in the state folder. */
export async function removeStale(stateDir: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.map((name) => rm(join(stateDir, name), { force: true })));
}

function keepLines(stream: NodeJS.ReadableStream | null, lines: string[]): void {
  let partial = "";
  stream?.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts.filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - STDERR_LINES_KEPT));
  });
  stream?.on("end", () => {
    if (partial) lines.push(partial);
  });
}

/** Writes the record of a persistent VMM that `backend` launched, its API at `apiSocket`. */
async function recordVmm(
  backend: string,
  spec: VmSpec,
  launched: LaunchedVmm,
  apiSocket: string,
): Promise<VmRecord> {
  const record: VmRecord = {
    format: 1,
    backend,
    name: spec.name,
    pid: launched.identity?.pid ?? 0,
    startTime: launched.identity?.startTime ?? 0,
    accelerator: spec.accelerator,
    sockets: {
      api: join(spec.stateDir, apiSocket),
      vsock: join(spec.stateDir, VSOCK_SOCKET),
    },
    spec,
    startedAt: new Date().toISOString(),
  };
  await writeVmRecord(record);
  return record;
}

/**
 * A recorded VMM that runs still, as launched: its console log so far is replayed into
 * `console`, and followed from there; its input cannot be reached again (a detached VMM reads
 * none).
 */
export async function relaunched(
  record: VmRecord,
  process: VmmProcess,
  console: ConsoleLog,
): Promise<LaunchedVmm> {
  const { stateDir } = record.spec;
  const consoleLog = join(stateDir, CONSOLE_LOG);
  const log = await readFile(consoleLog).catch(() => undefined);
  if (log) console.write(log);
  return {
    process,
    stderr: { file: join(stateDir, STDERR_FILE) },
    consoleInput: () => undefined,
    consoleFollower: new ConsoleFollower(consoleLog, console, log?.length ?? 0),
  };
}
