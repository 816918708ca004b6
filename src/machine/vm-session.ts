// The running side of a Machine: its lifecycle, its plan (backend, boot source, accelerator), its
// state folder, the VM the backend runs, and the guest session on it; and the one way commands
// reach the guest. Machine's verbs are built on this.

import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Abilities, OptionalCapability, RunningVm, VmSpec } from "../backends/backend.ts";
import { ConsoleLog } from "../backends/console-log.ts";
import { findBackend } from "../backends/registry.ts";
import { readVmRecord, removeRunFiles, writeVmRecord } from "../backends/vm-record.ts";
import { Deadline, formatMs, type WaitOptions } from "../deadline.ts";
import {
  CorralError,
  consoleTail,
  ErrorCodes,
  MachineExitedError,
  TimeoutError,
  UnsupportedError,
} from "../errors.ts";
import type {
  BackdoorShell,
  ExecOptions,
  ExecResult as RawExecResult,
} from "../guest/backdoor-shell.ts";
import type { TransferDisk } from "../guest/transfer-disk.ts";
import type { TransferPort } from "../guest/transfer-port.ts";
import type { AcceleratorVerdict } from "../host/accelerator.ts";
import { StateFolder } from "../host/state-folder.ts";
import { vlanMac } from "../network/addressing.ts";
import { GuestAgentLink } from "./guest-agent.ts";
import { untilScript } from "./guest-scripts.ts";
import { GuestSession, type ShellArrival } from "./guest-session.ts";
import { Lifecycle, type MachineOperation } from "./lifecycle.ts";
import type { ExecuteOptions, MachineOptions, SnapshotOptions } from "./machine-options.ts";
import { hasTransferDisk, type MachinePlan, machineIdentity, planMachine } from "./machine-plan.ts";
import { type PowerDownResult, pressUntilOff } from "./power-down.ts";
import { rebootToEnd } from "./reboot.ts";
import { prepareRootDisk, resolveDrive } from "./root-disk.ts";
import { prepareRestore, writeSnapshot } from "./snapshots.ts";

export type { RawExecResult };

export const SHELL_TIMEOUT_MS = 300_000;
export const EXECUTE_TIMEOUT_MS = 900_000;
export const WAIT_TIMEOUT_MS = 900_000;
export const MONITOR_TIMEOUT_MS = 30_000;
const SNAPSHOT_TIMEOUT_MS = 300_000;

export class VmSession {
  readonly name: string;
  readonly lifecycle = new Lifecycle();
  /** The QEMU guest agent of whichever VM runs (machines started with `guestAgent`). */
  readonly agent = new GuestAgentLink((deadline) =>
    this.#runningVm("guestAgent()").transport.open("qga", deadline),
  );
  /** The serial console across every start of the VM (a reboot starts a new VMM). */
  readonly #console = new ConsoleLog();
  readonly #consoleListeners = new Set<(line: string) => void>();
  #plan: MachinePlan | undefined;
  #folder: StateFolder | undefined;
  #vm: RunningVm | undefined;
  #starting: Promise<RunningVm> | undefined;
  #guest: GuestSession | undefined;
  #options: MachineOptions;
  /** The disk overlay to boot from when not the boot source's default (clones, after a snapshot). */
  #disk: string | undefined;

  constructor(name: string, options: MachineOptions) {
    this.name = name;
    this.#options = options;
    this.#disk = options.rootDisk === undefined ? undefined : resolve(options.rootDisk);
    this.#console.onLine((line) => {
      for (const listener of this.#consoleListeners) listener(line);
    });
  }

  /**
   * A session on the persistent VM whose state folder is `stateDir`, running in another corral
   * process or none. Throws MachineExitedError (after removing its stale record and sockets)
   * when its VMM has gone.
   */
  static async attach(name: string | undefined, stateDir: string): Promise<VmSession> {
    const dir = resolve(stateDir);
    const record = await readVmRecord(dir);
    const recorded = (record.spec.owner ?? {}) as MachineOptions;
    const { cpus, memoryMiB } = record.spec;
    const session = new VmSession(name ?? record.name, {
      ...recorded,
      // A resize records the VM's new size in its spec.
      ...(cpus ? { cpus } : {}),
      ...(memoryMiB ? { memoryMiB } : {}),
      name: name ?? record.name,
      ownership: "persistent",
      stateDir: dir,
    });
    const backend = findBackend(record.backend);
    session.#plan = {
      backend,
      boot: record.spec.boot,
      accelerator: {
        accelerator: record.accelerator,
        isKvmUsable: undefined,
        reason: `as recorded when the VM started (${record.startedAt})`,
        source: "record",
      },
      machine: record.spec.machine,
    };
    session.#folder = await StateFolder.claim({
      machine: session.name,
      dir,
      empty: false,
      keep: true,
    });
    const vm = await backend.attach(record, session.#console).catch(async (error: unknown) => {
      await session.#folder?.release();
      throw error;
    });
    if (!vm) {
      await removeRunFiles(record);
      await session.#folder.release();
      throw new MachineExitedError(
        `${session.name}: cannot attach to the VM in ${dir}: its ${record.backend} process (pid ${record.pid}) has exited`,
        { machine: session.name },
      );
    }
    session.#disk = record.spec.rootDisk;
    session.#adopt(vm, "attached");
    const deadline = session.deadline("attach", {}, MONITOR_TIMEOUT_MS);
    session.lifecycle.apply("start", "attach");
    session.lifecycle.apply("started", "attach");
    if (await vm.isPaused(deadline)) session.lifecycle.apply("pause", "attach");
    return session;
  }

  /** The machine's options; a resize changes its vCPUs and memory. */
  get options(): MachineOptions {
    return this.#options;
  }

  /** Keeps the vCPUs and memory a resize gave the VM, for its next start and its snapshots. */
  recordSize(size: { cpus: number; memoryMiB: number }): void {
    this.#options = { ...this.#options, cpus: size.cpus, memoryMiB: size.memoryMiB };
  }

  get vm(): RunningVm | undefined {
    return this.#vm;
  }

  get accelerator(): AcceleratorVerdict | undefined {
    return this.#plan?.accelerator;
  }

  get stateDir(): string | undefined {
    return this.#folder?.dir;
  }

  /** The root disk overlay the VM boots from when not the image's default one. */
  get rootDisk(): string | undefined {
    return this.#disk;
  }

  get isShellUp(): boolean {
    return this.#guest?.isUp === true && this.#vm?.exitInfo === undefined;
  }

  get isPersistent(): boolean {
    return this.options.ownership === "persistent";
  }

  get consoleLines(): readonly string[] {
    return this.#console.lines;
  }

  /** Calls `listener` with each serial console line from now on; returns the unsubscribe function. */
  onConsoleLine(listener: (line: string) => void): () => void {
    this.#consoleListeners.add(listener);
    return () => this.#consoleListeners.delete(listener);
  }

  /** The latest raw console bytes (see ConsoleLog.recentBytes). */
  consoleBytes(maxBytes?: number): Buffer {
    return this.#console.recentBytes(maxBytes);
  }

  /** Calls `listener` with each raw console chunk from now on; returns the unsubscribe function. */
  onConsoleData(listener: (chunk: Buffer) => void): () => void {
    return this.#console.onData(listener);
  }

  /** A deadline for the verb `verb`, decorated with this machine's console tail on failure. */
  deadline(verb: string, options: WaitOptions, defaultTimeoutMs: number): Deadline {
    return new Deadline(`${this.name}: ${verb}`, options, defaultTimeoutMs).describeWith(
      this.name,
      () => this.describe(),
    );
  }

  /**
   * Starts the VM: boots it, restores it from its snapshot, or boots it again from its disk once
   * it has ended (shut down, crashed, stopped). Idempotent while it starts or runs.
   */
  launch(): Promise<RunningVm> {
    if (this.lifecycle.allows("start")) {
      this.lifecycle.apply("start", "start()", this.name);
      this.#starting = this.#launch();
      this.#starting.catch(() => {
        if (this.lifecycle.state === "starting") this.lifecycle.apply("exited", "start failed");
      });
    }
    return this.#starting ?? Promise.reject(this.#notRunning("start()"));
  }

  /** Lets go of the VM: stops an owned one; detaches from a persistent one. Releases the folder. */
  async dispose(): Promise<void> {
    // A VM still starting is waited for: its start script would recreate the removed folder.
    const vm = this.#vm ?? (await this.#starting?.catch(() => undefined));
    this.#guest?.invalidate("the machine was disposed");
    this.agent.close();
    if (vm && this.isPersistent) await vm.detach();
    else if (vm) await this.#end(vm, "stop");
    await this.#folder?.release();
  }

  /** Ends the VM (persistent ones too): gracefully, or at once with `force`. */
  async stop(force: boolean): Promise<void> {
    const vm = this.#vm;
    if (!vm || vm.exitInfo) return;
    await this.#end(vm, force ? "crash" : "stop");
  }

  async #end(vm: RunningVm, how: "stop" | "crash"): Promise<void> {
    this.#guest?.invalidate(how === "crash" ? "the machine crashed" : "the machine was stopped");
    if (this.lifecycle.allows("stop")) this.lifecycle.apply("stop", `${how}()`);
    await vm.stop({ force: how === "crash" });
    await vm.exited;
  }

  /** The backdoor shell, once the guest has connected it; starts the VM if needed. */
  async connect(deadline: Deadline): Promise<BackdoorShell> {
    const vm = this.#vm;
    if (vm?.exitInfo) throw vm.exitError("connecting to the shell", vm.exitInfo);
    if (this.lifecycle.state === "paused") this.lifecycle.require("guest", deadline.what);
    const started = await this.launch();
    const guest = this.#guest;
    if (!guest) throw this.#notRunning(deadline.what);
    try {
      return await started.scope.race(guest.shell(deadline), deadline, "waiting for the shell");
    } catch (error) {
      throw await this.explain(error, "waiting for the backdoor shell");
    }
  }

  /** Pauses the guest's CPUs; its clock stops with them. */
  async pause(options: WaitOptions): Promise<void> {
    const deadline = this.deadline("pause", options, MONITOR_TIMEOUT_MS);
    this.lifecycle.require("pause", "pause()", this.name);
    await this.#runningVm("pause()").pause(deadline);
    this.lifecycle.apply("pause", "pause()", this.name);
  }

  /** Resumes a paused guest. */
  async resume(options: WaitOptions): Promise<void> {
    const deadline = this.deadline("resume", options, MONITOR_TIMEOUT_MS);
    this.lifecycle.require("resume", "resume()", this.name);
    await this.#runningVm("resume()").resume(deadline);
    this.lifecycle.apply("resume", "resume()", this.name);
  }

  /** Saves the machine into the snapshot folder `dir`, then resumes it or stops it. */
  async snapshot(dir: string, options: SnapshotOptions): Promise<void> {
    const target = resolve(dir);
    const deadline = this.deadline(`snapshot(${target})`, options, SNAPSHOT_TIMEOUT_MS);
    this.lifecycle.require("snapshot", "snapshot()", this.name);
    const vm = this.#runningVm("snapshot()");
    const plan = this.#plan;
    if (!plan) throw this.#notRunning("snapshot()");
    const identity = await machineIdentity(plan, this.options);
    const wasPaused = this.lifecycle.state === "paused";
    const shell = await vm.scope.race(
      this.#guest?.shell(deadline) ?? Promise.reject(this.#notRunning("snapshot()")),
      deadline,
      "waiting for the shell",
    );
    await shell.exclusive(
      deadline,
      () => this.describe(),
      async () => {
        const overlay = join(this.stateDir ?? "", `disk-after-${Date.now()}.qcow2`);
        const shouldResume = !options.stop && !wasPaused;
        let isResumed = false;
        // Run once the state is saved (the VM then resumes while the snapshot's files are
        // checksummed), or after a failure. Once its disk is frozen the VM writes to the new
        // overlay, even when the save then failed (another run saved the same snapshot first):
        // a reboot must boot from it, and so must a process that attaches to a persistent VM.
        const afterSave = async () => {
          if (existsSync(overlay) && this.#disk !== overlay) {
            this.#disk = overlay;
            if (this.isPersistent) await recordRootDisk(this.stateDir ?? "", overlay);
          }
          if (!shouldResume || isResumed || vm.exitInfo) return;
          isResumed = true;
          await vm.resume(deadline);
        };
        try {
          await vm.scope.race(
            writeSnapshot(
              vm,
              deadline,
              target,
              overlay,
              { machine: this.name, identity, shellSession: shell.session },
              afterSave,
            ),
            deadline,
            "saving a snapshot",
          );
        } finally {
          await afterSave();
        }
      },
    );
    if (options.stop) await this.#end(vm, "stop");
  }

  /** The running VM's transfer disk, when it has one. */
  transferDisk(): TransferDisk | undefined {
    this.#runningVm("file transfer");
    return this.#guest?.transferDisk();
  }

  async transferPort(deadline: Deadline): Promise<TransferPort> {
    const vm = this.#runningVm("file transfer");
    const guest = this.#guest;
    if (!guest) throw this.#notRunning("file transfer");
    return vm.scope.race(guest.transferPort(deadline), deadline, "opening the transfer port");
  }

  /**
   * Runs `command`. A `timeout` (counted from the call, the wait for the shell included) is
   * enforced in the guest: the command and its process group are killed then, and the call
   * fails with TimeoutError. A corral wait script (`isWaitScript`, guest-scripts.ts) ends by
   * itself at its limit and runs in the backdoor shell itself, which saves a subshell's fork.
   */
  async execute(
    command: string,
    options: ExecuteOptions,
    isWaitScript = false,
  ): Promise<RawExecResult> {
    const what = `${this.name}: execute(${JSON.stringify(command.length > 200 ? `${command.slice(0, 200)}…` : command)})`;
    const deadline = new Deadline(what, options, EXECUTE_TIMEOUT_MS);
    const guestDeadline =
      options.timeout === undefined ? undefined : isWaitScript ? "self" : "kill";
    return this.run(command, deadline, {
      ...options,
      ...(isWaitScript ? { inShell: true } : {}),
      ...(guestDeadline ? { guestDeadline } : {}),
    });
  }

  /**
   * Runs `command` under `deadline`, made by the verb the user called: it travels down as it is,
   * so a timeout names that verb. With `guestDeadline: "kill"` the guest kills the command at the
   * deadline and this throws TimeoutError.
   */
  async run(
    command: string,
    deadline: Deadline,
    options: Omit<ExecOptions, "signal"> & Pick<ExecuteOptions, "signal"> = {},
  ): Promise<RawExecResult> {
    const shell = await this.connect(deadline);
    const { onStdout, onStderr, maxBuffer, truncate, signal, inShell, guestDeadline } = options;
    const reply = await this.explained(
      shell.exec(command, deadline, () => this.describe(), {
        ...(onStdout ? { onStdout } : {}),
        ...(onStderr ? { onStderr } : {}),
        ...(maxBuffer !== undefined ? { maxBuffer } : {}),
        ...(truncate ? { truncate } : {}),
        ...(signal ? { signal } : {}),
        ...(inShell ? { inShell } : {}),
        ...(guestDeadline ? { guestDeadline } : {}),
      }),
      `running ${JSON.stringify(command)}`,
    );
    const { exitCode, stdout, stderr } = reply;
    if (reply.isKilled) {
      throw new TimeoutError(
        `${deadline.what}: timed out after ${formatMs(deadline.timeoutMs)} (killed in the guest)`,
        {
          machine: this.name,
          details: [
            ...(stdout.length > 0 ? ["stdout so far:", ...tail(stdout.toString())] : []),
            ...(stderr.length > 0 ? ["stderr so far:", ...tail(stderr.toString())] : []),
            ...this.describe(),
          ],
        },
      );
    }
    return {
      exitCode,
      stdout,
      stderr,
      ...(options.truncate
        ? {
            isStdoutTruncated: reply.isStdoutTruncated === true,
            isStderrTruncated: reply.isStderrTruncated === true,
          }
        : {}),
    };
  }

  /** Runs a corral wait script that ends by itself when `deadline` is up. */
  runWaitScript(script: string, deadline: Deadline, signal?: AbortSignal): Promise<RawExecResult> {
    return this.run(script, deadline, {
      inShell: true,
      guestDeadline: "self",
      ...(signal ? { signal } : {}),
    });
  }

  /** Repeats `command` in the guest until it succeeds (or fails); returns that run's stdout. */
  async until(
    command: string,
    untilSuccess: boolean,
    what: string,
    options: WaitOptions,
  ): Promise<string> {
    const deadline = new Deadline(`${this.name}: ${what}`, options, WAIT_TIMEOUT_MS);
    const result = await this.runWaitScript(
      untilScript(command, untilSuccess, deadline.remainingMs),
      deadline,
      options.signal,
    );
    if (result.exitCode === 0) return result.stdout.toString();
    throw new TimeoutError(`${deadline.what}: timed out after ${formatMs(deadline.timeoutMs)}`, {
      machine: this.name,
      details: [
        `Last attempt ${untilSuccess ? "failed" : "succeeded"}; its stdout:`,
        ...tail(result.stdout.toString()),
        ...(result.stderr.length > 0
          ? ["stderr of the attempts:", ...tail(result.stderr.toString())]
          : []),
        ...this.describe(),
      ],
    });
  }

  /**
   * Sends `command` without waiting for it (`execute(…, { checkReturn: false })`); the next
   * command waits until it has ended, or for the shell the guest starts after it.
   */
  async fire(command: string, options: WaitOptions): Promise<void> {
    const what = `${this.name}: execute(${JSON.stringify(command.length > 200 ? `${command.slice(0, 200)}…` : command)}, { checkReturn: false })`;
    const deadline = new Deadline(what, options, SHELL_TIMEOUT_MS);
    const shell = await this.connect(deadline);
    await shell.fire(command, deadline, () => this.describe());
  }

  /** Sends a command that ends the shell (poweroff, reboot) without waiting for its reply. */
  async fireAndForget(command: string, deadline: Deadline): Promise<void> {
    const shell = await this.connect(deadline);
    await shell.sendFinal(command, deadline, () => this.describe());
    this.#guest?.invalidate(`the guest is running ${command}`);
  }

  /** Powers the guest off and waits for the VM to end. */
  async shutdown(deadline: Deadline): Promise<void> {
    const vm = this.#vm;
    if (!vm || vm.exitInfo) return;
    const shell = await this.connect(deadline);
    if (this.lifecycle.allows("stop")) this.lifecycle.apply("stop", "shutdown()");
    await shell.sendFinal("poweroff", deadline, () => this.describe());
    this.#guest?.invalidate("the guest is running poweroff");
    await this.whileExiting(deadline);
  }

  /**
   * Presses the ACPI power button until the VM ends, and forces it off when `graceMs` has passed.
   * Does nothing when the VM is not running.
   */
  async powerDown(deadline: Deadline, graceMs: number): Promise<PowerDownResult> {
    const vm = this.#vm;
    if (!vm || vm.exitInfo) return { isForced: false, elapsedMs: 0 };
    const button = this.ability("powerDown()", "power-button");
    if (this.lifecycle.allows("stop")) this.lifecycle.apply("stop", "powerDown()");
    const startedAt = performance.now();
    const hasEnded = await pressUntilOff(vm, button, deadline, graceMs);
    if (!hasEnded) {
      deadline.step(`forcing the VM off: the guest did not power off within ${formatMs(graceMs)}`);
      await this.#end(vm, "crash");
    }
    await this.whileExiting(deadline);
    return { isForced: !hasEnded, elapsedMs: Math.round(performance.now() - startedAt) };
  }

  /** Waits until the VM has ended. */
  async whileExiting(deadline: Deadline): Promise<void> {
    const vm = this.#vm;
    if (!vm) return;
    await vm.scope.untilExit(deadline);
    this.#guest?.invalidate("the machine shut down");
  }

  /** The running VM's `capability`; throws a typed error when it is not running or lacks it. */
  ability<C extends OptionalCapability>(operation: string, capability: C): Abilities[C] {
    const vm = this.#runningVm(operation);
    const ability = vm.ability(capability);
    if (!ability) {
      const type = this.#plan?.machine?.type;
      const isMachineTypes = type && this.#plan?.backend.capabilities.has(capability);
      throw new UnsupportedError(vm.backend, capability, `${this.name}: ${operation}`, {
        machine: this.name,
        details: isMachineTypes ? [`It does on other machine types, not on ${type}.`] : [],
      });
    }
    return ability;
  }

  /** The running VM; throws a typed error when it is not started or has ended. */
  requireVm(operation: string): RunningVm {
    return this.#runningVm(operation);
  }

  /** The last console lines, for error messages. */
  describe(): string[] {
    return consoleTail(this.consoleLines);
  }

  async explained<T>(promise: Promise<T>, during: string): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      throw await this.explain(error, during);
    }
  }

  /** Turns a channel failure caused by the VM ending into a MachineExitedError. */
  async explain(error: unknown, during: string): Promise<unknown> {
    const vm = this.#vm;
    if (!vm || error instanceof MachineExitedError) return error;
    if (
      error instanceof CorralError &&
      ![ErrorCodes.GUEST_CHANNEL_BROKEN, ErrorCodes.QMP_CLOSED].includes(error.code as never)
    ) {
      return error;
    }
    // The shell's socket can close a moment before the VMM's exit is reported.
    const info = await Promise.race([vm.exited, sleep(500, undefined, { ref: false })]);
    return info ? vm.exitError(during, info) : error;
  }

  /**
   * Reboots the guest: it shuts down cleanly, its VMM ends, and the VM starts again from the same
   * disk (reboot.ts says why). Returns once the new shell answers.
   */
  async reboot(deadline: Deadline): Promise<void> {
    this.lifecycle.require("reboot", "reboot()", this.name);
    const vm = this.#runningVm("reboot()");
    this.lifecycle.apply("stop", "reboot()", this.name);
    await rebootToEnd(vm, this.#console, deadline, () => this.fireAndForget("reboot", deadline));
    await this.launch();
    await this.connect(deadline);
  }

  #runningVm(operation: string): RunningVm {
    const vm = this.#vm;
    if (!vm) throw this.#notRunning(operation);
    if (vm.exitInfo) throw vm.exitError(operation, vm.exitInfo);
    return vm;
  }

  #notRunning(operation: string): CorralError {
    return new CorralError(
      ErrorCodes.MACHINE_NOT_RUNNING,
      `${this.name}: ${operation}: the machine is not started`,
      { machine: this.name },
    );
  }

  async #launch(): Promise<RunningVm> {
    const isFirst = this.#plan === undefined;
    this.#plan ??= await planMachine(this.options, `starting machine ${this.name}`);
    this.#folder ??= await StateFolder.claim({
      machine: this.name,
      dir: this.options.stateDir,
      empty: !this.options.keepState,
      keep: (this.options.keepState ?? false) || this.isPersistent,
    });
    const { backend } = this.#plan;
    const restore =
      this.options.snapshot && isFirst
        ? await prepareRestore(
            resolve(this.options.snapshot),
            await machineIdentity(this.#plan, this.options),
            backend,
            this.#folder.dir,
          )
        : undefined;
    if (restore) this.#disk = restore.overlay;
    this.#disk ??= await prepareRootDisk(this.#plan, this.options, this.#folder.dir);
    if (this.options.sharedDir) await mkdir(resolve(this.options.sharedDir), { recursive: true });
    const spec = this.#spec(this.#plan, this.#folder.dir);
    const vm = restore
      ? await backend.restore(spec, this.#console, restore.files)
      : await backend.start(spec, this.#console);
    if (restore) this.#adopt(vm, "restored", restore.shellSession);
    else this.#adopt(vm, "boot");
    return vm;
  }

  /**
   * Takes `vm` as the machine's VM, with a new guest session on it; `shellSession` is the
   * session of a restored snapshot's shell.
   */
  #adopt(vm: RunningVm, arrival: ShellArrival, shellSession?: string): void {
    this.#vm = vm;
    this.#starting = Promise.resolve(vm);
    const guest = new GuestSession(vm, arrival, () => this.describe(), shellSession);
    this.#guest = guest;
    // Connected at once, without a limit of its own: callers wait for it within theirs.
    const deadline = new Deadline(
      `${this.name}: waiting for the shell`,
      {},
      Number.POSITIVE_INFINITY,
    );
    // The machine runs once its shell answers; an exit nobody asked for is "exited".
    guest.shell(deadline).then(
      () => this.#transition("started"),
      () => undefined,
    );
    void vm.exited.then(() => {
      guest.invalidate("the machine exited");
      if (this.#vm !== vm) return;
      this.#transition(this.lifecycle.state === "stopping" ? "stopped" : "exited");
    });
  }

  #transition(operation: MachineOperation): void {
    if (this.lifecycle.allows(operation)) this.lifecycle.apply(operation, operation);
  }

  #spec(plan: MachinePlan, stateDir: string): VmSpec {
    const { cpus, memoryMiB, maxCpus, maxMemoryMiB, sharedDir, vlans = [] } = this.options;
    return {
      name: this.name,
      stateDir,
      ownership: this.options.ownership ?? "owned",
      boot: plan.boot,
      accelerator: plan.accelerator.accelerator,
      cpus,
      memoryMiB,
      maxCpus,
      maxMemoryMiB,
      rootDisk: this.#disk,
      nics: [
        ...vlans.map(({ vlan, switchSocket }) => ({
          vlan,
          switchSocket,
          mac: vlanMac(vlan, this.options.node ?? 1),
        })),
        ...(this.options.taps ?? []).map(({ ifname, mac }) => ({
          kind: "tap" as const,
          ifname,
          mac,
        })),
      ],
      sharedDir: sharedDir ? resolve(sharedDir) : undefined,
      kernelParams: this.options.kernelParams ?? [],
      allowReboot: this.options.allowReboot ?? false,
      guestAgent: this.options.guestAgent ?? false,
      transferDisk: hasTransferDisk(plan, this.options),
      env: this.options.env ?? {},
      owner: this.#ownerRecord(),
      machine: plan.machine,
      drives: (this.options.drives ?? []).map(resolveDrive),
    };
  }

  /** The options a later Machine.attach needs to act as this machine (snapshots check them). */
  #ownerRecord(): Record<string, unknown> {
    const { snapshot: _, stateDir: __, keepState: ___, rootDisk: ____, ...options } = this.options;
    return options;
  }
}

/** Records in a persistent VM's record the disk overlay it writes to now. */
async function recordRootDisk(stateDir: string, rootDisk: string): Promise<void> {
  const record = await readVmRecord(stateDir);
  await writeVmRecord({ ...record, spec: { ...record.spec, rootDisk } });
}

/** The last `count` lines of `text`, indented for an error message. */
export function tail(text: string, count = 20): string[] {
  return text
    .replace(/\n$/, "")
    .split("\n")
    .slice(-count)
    .map((line) => `  | ${line}`);
}
