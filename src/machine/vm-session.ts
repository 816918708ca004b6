// The running side of a Machine: its VM, state folder, backdoor shell and transfer port, and the
// one way commands reach the guest. Machine's verbs are built on this.

import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Capability, RunningVm } from "../backends/backend.ts";
import { ConsoleLog } from "../backends/console-log.ts";
import { QemuVm } from "../backends/qemu/qemu-vm.ts";
import { Deadline, formatMs, type WaitOptions } from "../deadline.ts";
import {
  CorralError,
  consoleTail,
  ErrorCodes,
  MachineExitedError,
  TimeoutError,
  UnsupportedError,
} from "../errors.ts";
import { BackdoorShell, type ExecResult as RawExecResult } from "../guest/backdoor-shell.ts";
import { TransferPort } from "../guest/transfer-port.ts";
import { type AcceleratorVerdict, resolveAccelerator } from "../host/accelerator.ts";
import { runtimeDir } from "../host/paths.ts";
import { releaseDir, watchDir } from "../host/watchdog.ts";
import { defaultProbeKernel, findImage } from "../images/image-cache.ts";
import { vlanMac } from "../images/network.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import { untilScript } from "./guest-scripts.ts";
import type { ExecuteOptions, MachineOptions, SnapshotOptions } from "./machine-options.ts";
import { prepareRestore, writeSnapshot } from "./snapshots.ts";

export type { RawExecResult };

export const SHELL_TIMEOUT_MS = 300_000;
export const EXECUTE_TIMEOUT_MS = 900_000;
export const WAIT_TIMEOUT_MS = 900_000;
export const MONITOR_TIMEOUT_MS = 30_000;
const SNAPSHOT_TIMEOUT_MS = 300_000;
/** How long a rebooting guest that said "reboot: Restarting system" gets before QEMU is ended. */
const RESET_GRACE_MS = 3000;
/** The same, from systemd's last message ("Shutting down.") before the kernel's reboot. */
const SHUTDOWN_GRACE_MS = 10_000;

export class VmSession {
  readonly name: string;
  readonly options: MachineOptions;
  #vm: RunningVm | undefined;
  #starting: Promise<RunningVm> | undefined;
  #shell: Promise<BackdoorShell> | undefined;
  #transfer: Promise<TransferPort> | undefined;
  #isShellUp = false;
  #stateDir: string | undefined;
  #ownsStateDir = false;
  #accelerator: AcceleratorVerdict | undefined;
  readonly #consoleListeners = new Set<(line: string) => void>();
  /** The serial console across every start of the VM (a reboot restarts QEMU). */
  readonly #console = new ConsoleLog();
  /** The disk overlay to boot from when not the start script's default (clones, after a snapshot). */
  #disk: string | undefined;
  /** The next shell connection takes over a running shell (a restored snapshot). */
  #attachOnConnect = false;

  constructor(name: string, options: MachineOptions) {
    this.name = name;
    this.options = options;
    this.#console.onLine((line) => {
      for (const listener of this.#consoleListeners) listener(line);
    });
  }

  get vm(): RunningVm | undefined {
    return this.#vm;
  }

  get accelerator(): AcceleratorVerdict | undefined {
    return this.#accelerator;
  }

  get stateDir(): string | undefined {
    return this.#stateDir;
  }

  get isShellUp(): boolean {
    return this.#isShellUp;
  }

  get consoleLines(): readonly string[] {
    return this.#console.lines;
  }

  /** Calls `listener` with each serial console line from now on; returns the unsubscribe function. */
  onConsoleLine(listener: (line: string) => void): () => void {
    this.#consoleListeners.add(listener);
    return () => this.#consoleListeners.delete(listener);
  }

  launch(): Promise<RunningVm> {
    this.#starting ??= this.#launch();
    return this.#starting;
  }

  /** Stops the VM if it runs and removes the state folder it created (unless `keepState`). */
  async dispose(): Promise<void> {
    const vm = this.#vm;
    this.shellGone("the machine was disposed");
    if (vm) await vm[Symbol.asyncDispose]();
    if (this.#stateDir) statesInUse.delete(this.#stateDir);
    if (this.#stateDir && this.#ownsStateDir && !this.options.keepState) {
      await rm(this.#stateDir, { recursive: true, force: true });
      releaseDir(this.#stateDir);
    }
  }

  /** The backdoor shell, once the guest has connected it; starts the VM if needed. */
  connect(deadline: Deadline): Promise<BackdoorShell> {
    const vm = this.#vm;
    if (vm?.exitInfo) return Promise.reject(vm.exitError("connecting to the shell", vm.exitInfo));
    this.#shell ??= (async () => {
      const vm = await this.launch();
      try {
        const streams = await vm.shellStreams(deadline);
        if (!this.#attachOnConnect) {
          const shell = await BackdoorShell.connect(streams, deadline, () => this.describe());
          this.#isShellUp = true;
          return shell;
        }
        // Restored: the shell is already there, idle and framed; only the clock is behind. A
        // simple command runs without a fork in the guest, whose code is cold in TCG's cache.
        await vm.resume(deadline);
        this.#attachOnConnect = false;
        const shell = BackdoorShell.attach(streams);
        const now = (Date.now() / 1000).toFixed(3);
        await shell.exec(`date -s @${now}`, deadline, () => this.describe());
        this.#isShellUp = true;
        return shell;
      } catch (error) {
        throw await this.explain(error, "waiting for the backdoor shell");
      }
    })();
    this.#shell.catch(() => {
      this.#shell = undefined;
    });
    return this.#shell;
  }

  /** Saves the machine into the snapshot folder `dir`, then resumes it or stops it. */
  async snapshot(dir: string, options: SnapshotOptions): Promise<void> {
    const vm = this.requireVm("snapshot", "snapshot");
    const target = resolve(dir);
    const deadline = new Deadline(
      `${this.name}: snapshot(${target})`,
      options,
      SNAPSHOT_TIMEOUT_MS,
    );
    const shell = await this.connect(deadline);
    const accelerator = this.#accelerator?.accelerator ?? "tcg";
    const describe = () => this.describe();
    await shell.exclusive(deadline, describe, async () => {
      const overlay = join(this.#stateDir ?? "", `disk-after-${Date.now()}.qcow2`);
      try {
        await this.whileAlive(
          writeSnapshot(vm, deadline, target, overlay, {
            machine: this.name,
            options: this.options,
            accelerator,
          }),
          deadline,
        );
        // The VM now writes to the new overlay; a reboot must boot from it.
        this.#disk = overlay;
      } finally {
        if (!options.stop && !vm.hasExited) await vm.resume(deadline);
      }
    });
    if (options.stop) {
      this.shellGone("the machine was stopped after its snapshot");
      await vm.stop();
    }
  }

  transferPort(deadline: Deadline): Promise<TransferPort> {
    const vm = this.requireVm("file transfer");
    this.#transfer ??= vm.transferStream(deadline).then((socket) => new TransferPort(socket));
    this.#transfer.catch(() => {
      this.#transfer = undefined;
    });
    return this.#transfer;
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
    const shell = await this.connect(deadline);
    const { onStdout, onStderr, maxBuffer, signal } = options;
    const reply = await this.explained(
      shell.exec(command, deadline, () => this.describe(), {
        ...(onStdout ? { onStdout } : {}),
        ...(onStderr ? { onStderr } : {}),
        ...(maxBuffer !== undefined ? { maxBuffer } : {}),
        ...(signal ? { signal } : {}),
        ...(isWaitScript ? { inShell: true } : {}),
        ...(options.timeout !== undefined
          ? { guestDeadline: isWaitScript ? ("self" as const) : ("kill" as const) }
          : {}),
      }),
      `running ${JSON.stringify(command)}`,
    );
    const { exitCode, stdout, stderr } = reply;
    if (reply.isKilled) {
      throw new TimeoutError(
        `${what}: timed out after ${formatMs(deadline.timeoutMs)} (killed in the guest)`,
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
    return { exitCode, stdout, stderr };
  }

  /** Runs a corral wait script that ends by itself when `deadline` is up. */
  runWaitScript(script: string, deadline: Deadline, signal?: AbortSignal): Promise<RawExecResult> {
    return this.execute(
      script,
      { timeout: deadline.remainingMs, ...(signal ? { signal } : {}) },
      true,
    );
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

  /** Sends a command that ends the shell (poweroff, reboot) without waiting for its reply. */
  async fireAndForget(command: string, deadline: Deadline): Promise<void> {
    const shell = await this.connect(deadline);
    this.#isShellUp = false;
    await shell.sendFinal(command, deadline, () => this.describe());
  }

  shellGone(reason: string): void {
    this.#isShellUp = false;
    void this.#shell?.then(
      (shell) => shell.invalidate(reason),
      () => undefined,
    );
  }

  /** The running VM; throws a typed error when it is not started, has ended, or lacks `capability`. */
  requireVm(operation: string, capability?: Capability): RunningVm {
    const vm = this.#vm;
    if (!vm) {
      throw new CorralError(
        ErrorCodes.MACHINE_NOT_RUNNING,
        `${this.name}: ${operation}: the machine is not started`,
        { machine: this.name },
      );
    }
    if (vm.exitInfo) throw vm.exitError(operation, vm.exitInfo);
    if (capability && !vm.capabilities.has(capability)) {
      throw new UnsupportedError(vm.backend, capability, `${this.name}: ${operation}`, {
        machine: this.name,
      });
    }
    return vm;
  }

  /** The last console lines, for error messages. */
  describe(): string[] {
    return consoleTail(this.consoleLines);
  }

  /** `promise`, unless the deadline fires or the VM ends first. */
  async whileAlive<T>(promise: Promise<T>, deadline: Deadline): Promise<T> {
    const vm = this.#vm;
    const { promise: outcome, resolve: done, reject } = Promise.withResolvers<T>();
    const onAbort = () => reject(deadline.error(this.describe(), this.name));
    if (deadline.signal.aborted) onAbort();
    deadline.signal.addEventListener("abort", onAbort, { once: true });
    void vm?.exited.then((info) => reject(vm.exitError(deadline.what, info)));
    promise.then(done, reject);
    try {
      return await outcome;
    } finally {
      deadline.signal.removeEventListener("abort", onAbort);
    }
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
    // The shell's socket can close a moment before QEMU's exit is reported.
    const info = await Promise.race([vm.exited, sleep(500, undefined, { ref: false })]);
    return info ? vm.exitError(during, info) : error;
  }

  /**
   * Reboots the guest: it shuts down, its QEMU ends (a warm reset is not reliable with several
   * vCPUs under TCG: the guest kernel can hang in its last steps or after the reset), and the VM
   * starts again from the same disk. Returns once the new shell answers.
   */
  async reboot(deadline: Deadline): Promise<void> {
    const vm = this.requireVm("reboot", "reboot");
    // This reboot ends QEMU even when the machine lets the guest reboot by itself.
    await vm.setRebootAllowed(deadline, false);
    let fallback: NodeJS.Timeout | undefined;
    const stopWatching = this.#console.onLine((line) => {
      const graceMs = /reboot: Restarting system/.test(line)
        ? RESET_GRACE_MS
        : /systemd\[1\]: Shutting down\.$/.test(line)
          ? SHUTDOWN_GRACE_MS
          : undefined;
      if (graceMs === undefined) return;
      clearTimeout(fallback);
      // By then the disks are unmounted or read-only: ending QEMU loses nothing.
      fallback = setTimeout(() => void vm.stop(), graceMs);
    });
    try {
      await this.fireAndForget("reboot", deadline);
      await this.whileExiting(vm, deadline);
    } finally {
      stopWatching();
      clearTimeout(fallback);
    }
    this.#vm = undefined;
    this.#shell = undefined;
    this.#transfer = undefined;
    this.#starting = this.#launch(true);
    await this.connect(deadline);
  }

  /** Waits for `vm` to end, failing at the deadline. */
  async whileExiting(vm: RunningVm, deadline: Deadline): Promise<void> {
    const { promise, resolve: done, reject } = Promise.withResolvers<void>();
    const onAbort = () => reject(deadline.error(this.describe(), this.name));
    if (deadline.signal.aborted) onAbort();
    deadline.signal.addEventListener("abort", onAbort, { once: true });
    void vm.exited.then(() => done());
    try {
      await promise;
    } finally {
      deadline.signal.removeEventListener("abort", onAbort);
    }
  }

  async #launch(again = false): Promise<RunningVm> {
    QemuVm.requireHostTools();
    const { startScript, probeKernel } = await this.#bootFiles();
    this.#accelerator ??= await resolveAccelerator({ forced: this.options.accel, probeKernel });
    if (!again) this.#stateDir = await this.#prepareStateDir();
    const stateDir = this.#stateDir ?? "";
    const restore =
      this.options.snapshot && !again
        ? await prepareRestore(
            resolve(this.options.snapshot),
            this.options,
            this.#accelerator.accelerator,
            stateDir,
          )
        : undefined;
    if (restore) {
      this.#disk = restore.overlay;
      this.#attachOnConnect = true;
    }
    const { sharedDir, cpus, memoryMiB, vlans = [] } = this.options;
    if (sharedDir) await mkdir(resolve(sharedDir), { recursive: true });
    const ownNics = this.options.startScript !== undefined;
    const vm = await QemuVm.start(startScript, {
      name: this.name,
      stateDir,
      accelerator: this.#accelerator.accelerator,
      allowReboot: this.options.allowReboot ?? false,
      console: this.#console,
      ...(cpus ? { cpus } : {}),
      ...(memoryMiB ? { memoryMiB } : {}),
      ...(restore ? { restoreState: restore.stateFile } : {}),
      nics: ownNics
        ? []
        : vlans.map(({ vlan, switchSocket }) => ({
            vlan,
            switchSocket,
            mac: vlanMac(vlan, this.options.node ?? 1),
          })),
      env: {
        ...(sharedDir ? { SHARED_DIR: resolve(sharedDir) } : {}),
        ...(this.#disk ? { NIX_DISK_IMAGE: this.#disk } : {}),
        ...(ownNics
          ? Object.fromEntries(
              vlans.map(({ vlan, switchSocket }) => [`QEMU_VDE_SOCKET_${vlan}`, switchSocket]),
            )
          : {}),
        ...this.options.env,
      },
    });
    void vm.exited.then(() => this.shellGone("the machine exited"));
    this.#vm = vm;
    return vm;
  }

  async #prepareStateDir(): Promise<string> {
    const given = this.options.stateDir;
    let dir: string;
    if (given) {
      dir = resolve(given);
      await this.#requireUnused(dir);
      if (!this.options.keepState) await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
    } else {
      this.#ownsStateDir = true;
      dir = await mkdtemp(join(runtimeDir(), `corral-${this.name.replace(/[^\w.-]/g, "_")}-`));
      if (!this.options.keepState) watchDir(dir);
    }
    await writeFile(join(dir, LOCK_FILE), `${process.pid}\n`);
    statesInUse.add(dir);
    return dir;
  }

  /** Refuses a state folder that another live machine uses: they would share a writable disk. */
  async #requireUnused(dir: string): Promise<void> {
    const owner = Number.parseInt(await readFile(join(dir, LOCK_FILE), "utf8").catch(() => ""), 10);
    const taken = statesInUse.has(dir) || (owner > 0 && owner !== process.pid && isAlive(owner));
    if (!taken) return;
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `${this.name}: state folder ${dir} is in use by another machine (process ${owner}); two machines cannot share one writable disk: give each its own stateDir`,
      { machine: this.name },
    );
  }

  async #bootFiles(): Promise<{ startScript: string; probeKernel: string | undefined }> {
    if (this.options.startScript) {
      return {
        startScript: resolve(this.options.startScript),
        probeKernel: await defaultProbeKernel(),
      };
    }
    const image = await findImage(this.options.image ?? DEFAULT_RECIPE);
    return {
      startScript: join(image.dir, image.manifest.startScript),
      probeKernel: join(image.dir, "vmlinuz"),
    };
  }
}

/** State folders of this process's machines that have not been disposed. */
const statesInUse = new Set<string>();
/** In a state folder: the pid of the corral process whose machine uses it. */
const LOCK_FILE = "corral.pid";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The last `count` lines of `text`, indented for an error message. */
export function tail(text: string, count = 20): string[] {
  return text
    .replace(/\n$/, "")
    .split("\n")
    .slice(-count)
    .map((line) => `  | ${line}`);
}
