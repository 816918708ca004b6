// Starting QEMU, owned or persistent, and finding a persistent one again. What is run (the start
// script, or QEMU with corral's own machine arguments) is qemu-command.ts's choice.

import { closeSync, openSync } from "node:fs";
import { open, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import { emptyTransferDisk } from "../../guest/transfer-disk.ts";
import { DetachedProcess } from "../../host/detached-process.ts";
import { SupervisedProcess } from "../../host/supervised-process.ts";
import type { RestoreFiles, VmRecord, VmSpec } from "../backend.ts";
import type { ConsoleLog } from "../console-log.ts";
import { removeRunFiles, writeVmRecord } from "../vm-record.ts";
import type { MappedMemory } from "./memory-backend.ts";
import { type QemuCommand, qemuCapabilities, qemuCommand } from "./qemu-command.ts";
import { DialingSockets, ListeningSockets } from "./qemu-sockets.ts";
import { QemuVm } from "./qemu-vm.ts";
import { runtimeArgs } from "./runtime-args.ts";
import { transferDiskArgs, transferDiskPath } from "./transfer-disk.ts";

/** The descriptor a restored VM's QEMU reads its saved state from: the first after stdio. */
const INCOMING_FD = 3;
/** How long a restored QEMU may take to answer QMP before its state is loaded. */
const INCOMING_TIMEOUT_MS = 30_000;

/** The saved state a restore reads: its descriptor, and whether its RAM is a mapped file. */
interface Incoming {
  fd: number;
  isMapped: boolean;
}
const STDERR_LINES_KEPT = 50;
const CONSOLE_LOG = "console.log";
const STDERR_FILE = "vmm.stderr";

let launches = 0;

/** Starts QEMU for `spec`; from the saved state in `restore` instead of booting if given. */
export async function launchQemu(
  spec: VmSpec,
  console: ConsoleLog,
  restore?: RestoreFiles,
): Promise<QemuVm> {
  let command: QemuCommand | undefined;
  // A saved state is read by QEMU itself from an inherited descriptor: no pipe, no copy.
  const state = restore ? await open(restore.state, "r") : undefined;
  try {
    command = await qemuCommand(spec);
    const mapped = restore?.memory ? await mappedMemory(restore.memory) : undefined;
    if (mapped) command.runtime.memory = mapped;
    const incoming: Incoming | undefined = state && {
      fd: state.fd,
      isMapped: mapped !== undefined,
    };
    const vm =
      spec.ownership === "persistent"
        ? await launchPersistent(spec, command, console, incoming)
        : await launchOwned(spec, command, console, incoming);
    if (incoming?.isMapped) await startMappedIncoming(vm, spec.name);
    return vm;
  } catch (error) {
    if (error instanceof CorralError) throw error;
    const what = command?.file ?? "QEMU";
    throw new CorralError(ErrorCodes.MACHINE_START_FAILED, `${spec.name}: cannot run ${what}`, {
      cause: error,
      machine: spec.name,
    });
  } finally {
    await state?.close();
  }
}

async function launchOwned(
  spec: VmSpec,
  command: QemuCommand,
  console: ConsoleLog,
  incoming: Incoming | undefined,
): Promise<QemuVm> {
  // Sockets of each start have their own names: the previous QEMU's may still be going away.
  const sockets = await ListeningSockets.listen(spec.stateDir, String(++launches), spec);
  try {
    const disk = await transferDisk(spec);
    const args = [
      ...command.args,
      ...runtimeArgs({ ...spec, ...command.runtime, sockets: sockets.paths }),
      ...(disk ? transferDiskArgs(disk) : []),
    ];
    args.push(...incomingArgs(incoming));
    const child = await SupervisedProcess.spawn(command.file, args, {
      cwd: spec.stateDir,
      env: command.env,
      stdio: ["pipe", "pipe", "pipe", ...(incoming ? [incoming.fd] : [])],
    });
    const stderr: string[] = [];
    child.child.stdout?.on("data", (chunk: Buffer) => console.write(chunk));
    child.child.stdin?.on("error", () => {});
    keepLines(child.child.stderr, stderr);
    return new QemuVm({
      name: spec.name,
      ownership: "owned",
      process: child,
      sockets,
      console,
      stderr: { lines: stderr },
      consoleInput: (text) => child.child.stdin?.write(text),
      capabilities: qemuCapabilities(spec.machine),
      transferDisk: disk,
    });
  } catch (error) {
    sockets.close();
    throw error;
  }
}

async function launchPersistent(
  spec: VmSpec,
  command: QemuCommand,
  console: ConsoleLog,
  incoming: Incoming | undefined,
): Promise<QemuVm> {
  const sockets = DialingSockets.at(spec.stateDir, spec);
  await Promise.all(
    Object.values(sockets.paths).map((path) => rm(path as string, { force: true })),
  );
  const disk = await transferDisk(spec);
  const args = [
    ...command.args,
    ...runtimeArgs({
      ...spec,
      ...command.runtime,
      sockets: sockets.paths,
      consoleLog: join(spec.stateDir, CONSOLE_LOG),
    }),
    ...(disk ? transferDiskArgs(disk) : []),
  ];
  args.push(...incomingArgs(incoming));
  const stderrFile = join(spec.stateDir, STDERR_FILE);
  const stderrFd = openSync(stderrFile, "a");
  let process: DetachedProcess;
  try {
    process = await DetachedProcess.spawn(command.file, args, {
      cwd: spec.stateDir,
      env: command.env,
      stdio: ["ignore", stderrFd, stderrFd, ...(incoming ? [incoming.fd] : [])],
    });
  } finally {
    closeSync(stderrFd);
  }
  const record: VmRecord = {
    format: 1,
    backend: "qemu",
    name: spec.name,
    pid: process.identity.pid,
    startTime: process.identity.startTime,
    accelerator: spec.accelerator,
    sockets: sockets.paths as Record<string, string>,
    spec,
    startedAt: new Date().toISOString(),
  };
  await writeVmRecord(record);
  return persistentVm(record, process, sockets, console);
}

/** The persistent VM `record` describes, if its QEMU still runs. */
export async function attachQemu(
  record: VmRecord,
  console: ConsoleLog,
): Promise<QemuVm | undefined> {
  const process = DetachedProcess.find({ pid: record.pid, startTime: record.startTime });
  if (!process) return undefined;
  const log = await readFile(join(record.spec.stateDir, CONSOLE_LOG)).catch(() => undefined);
  if (log) console.write(log);
  return persistentVm(record, process, new DialingSockets(record.sockets), console);
}

function persistentVm(
  record: VmRecord,
  process: DetachedProcess,
  sockets: DialingSockets,
  console: ConsoleLog,
): QemuVm {
  // The serial console: its output live, its input. Its history is in console.log. QEMU may not
  // have created the socket yet: it is dialled until it has, or until QEMU has gone.
  const gone = new AbortController();
  void process.exited.then(() => gone.abort());
  const consoleSocket = sockets
    .open(
      "console",
      new Deadline("connecting the serial console", { signal: gone.signal }, Infinity),
    )
    .then((socket) => {
      socket.on("data", (chunk: Buffer) => console.write(chunk));
      return socket;
    });
  consoleSocket.catch(() => undefined);
  return new QemuVm({
    name: record.name,
    ownership: "persistent",
    process,
    sockets,
    console,
    stderr: { file: join(record.spec.stateDir, STDERR_FILE) },
    consoleInput: (text) =>
      void consoleSocket.then(
        (socket) => socket.write(text),
        () => undefined,
      ),
    capabilities: qemuCapabilities(record.spec.machine),
    transferDisk: transferDiskPath(record.spec),
    onExit: async () => {
      gone.abort();
      await removeRunFiles(record);
    },
    onResized: async ({ cpus, memoryMiB }) => {
      // A later start of the VM (by whichever process attaches to it) keeps its new size.
      record.spec = { ...record.spec, cpus, memoryMiB };
      await writeVmRecord(record);
    },
  });
}

/** The transfer disk's file of a VM about to start, made empty; undefined when it has none. */
async function transferDisk(spec: VmSpec): Promise<string | undefined> {
  const path = transferDiskPath(spec);
  if (path) await emptyTransferDisk(path);
  return path;
}

/**
 * A streamed state is read from the start (`-incoming fd:`). A state beside a mapped memory file
 * waits (`defer`) for the x-ignore-shared capability, which QEMU 7.2 takes only over QMP: with
 * it, the stream carries no RAM and the guest's pages come from the mapping.
 */
function incomingArgs(incoming: Incoming | undefined): string[] {
  if (!incoming) return [];
  return ["-incoming", incoming.isMapped ? "defer" : `fd:${INCOMING_FD}`];
}

async function startMappedIncoming(vm: QemuVm, name: string): Promise<void> {
  const deadline = new Deadline(`${name}: loading the saved state`, {}, INCOMING_TIMEOUT_MS);
  try {
    await vm.command(deadline, "migrate-set-capabilities", {
      capabilities: [{ capability: "x-ignore-shared", state: true }],
    });
    await vm.command(deadline, "migrate-incoming", { uri: `fd:${INCOMING_FD}` });
  } catch (error) {
    await vm.stop({ force: true });
    throw error;
  }
}

/** A snapshot's memory file as the RAM of the VM restoring it; its size is the RAM's. */
async function mappedMemory(path: string): Promise<MappedMemory> {
  const { size } = await stat(path);
  return { kind: "mapped", path, sizeMiB: size / 2 ** 20 };
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
