// Machine: one VM and the OS inside it, whatever the backend. Starts the VM, waits for the
// guest's backdoor shell and runs commands in it.

import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { RunningVm } from "../backends/backend.ts";
import { QemuVm } from "../backends/qemu/qemu-vm.ts";
import { Deadline, type WaitOptions } from "../deadline.ts";
import { CorralError, consoleTail, ErrorCodes } from "../errors.ts";
import { BackdoorShell, type ExecOptions, type ExecResult } from "../guest/backdoor-shell.ts";
import {
  type Accelerator,
  type AcceleratorVerdict,
  resolveAccelerator,
} from "../host/accelerator.ts";
import { runtimeDir } from "../host/paths.ts";
import { defaultProbeKernel, findImage } from "../images/image-cache.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";

export interface MachineOptions {
  /** Name used in messages and logs; defaults to the image's recipe or the start script's name. */
  name?: string;
  /** Image to boot: a recipe name or a cache entry id. Default: `debian-12`. */
  image?: string;
  /** A `run-<name>-vm` start script to run instead of an image. */
  startScript?: string;
  /** Force `kvm` or `tcg`; by default KVM is used where it was found to work. */
  accel?: Accelerator;
  /** Folder for the VM's state (sockets, disk overlay); default: a new temporary folder. */
  stateDir?: string;
  /** Keep the state folder when the machine is disposed. */
  keepState?: boolean;
  /** Keep the VM running across a guest reboot. */
  allowReboot?: boolean;
  /** Extra environment for the start script, e.g. `QEMU_OPTS` or `QEMU_KERNEL_PARAMS`. */
  env?: Record<string, string>;
}

export type { ExecOptions, ExecResult };

export interface ExecuteOptions extends WaitOptions, ExecOptions {}

const SHELL_TIMEOUT_MS = 120_000;
const EXECUTE_TIMEOUT_MS = 600_000;

/** One virtual machine. Dispose it (`await using`) to stop the VM and remove its state. */
export class Machine implements AsyncDisposable {
  readonly name: string;
  readonly #options: MachineOptions;
  #vm: RunningVm | undefined;
  #shell: Promise<BackdoorShell> | undefined;
  #stateDir: string | undefined;
  #accelerator: AcceleratorVerdict | undefined;
  readonly #consoleListeners = new Set<(line: string) => void>();

  constructor(options: MachineOptions = {}) {
    this.#options = options;
    this.name =
      options.name ?? nameFromStartScript(options.startScript) ?? options.image ?? DEFAULT_RECIPE;
  }

  /** The accelerator in use and why; undefined before start(). */
  get accelerator(): AcceleratorVerdict | undefined {
    return this.#accelerator;
  }

  /** Every serial console line so far. */
  get consoleLines(): readonly string[] {
    return this.#vm?.console.lines ?? [];
  }

  /** Calls `listener` with each serial console line from now on; returns the unsubscribe function. */
  onConsoleLine(listener: (line: string) => void): () => void {
    this.#consoleListeners.add(listener);
    return () => this.#consoleListeners.delete(listener);
  }

  /** The VM's state folder; undefined before start(). */
  get stateDir(): string | undefined {
    return this.#stateDir;
  }

  get isUp(): boolean {
    return this.#vm !== undefined && !this.#vm.hasExited;
  }

  /** Starts the VM; the guest is still booting when this returns. */
  async start(): Promise<void> {
    if (this.#vm) return;
    QemuVm.requireHostTools();
    const { startScript, probeKernel } = await this.#bootFiles();
    this.#accelerator = await resolveAccelerator({ forced: this.#options.accel, probeKernel });
    this.#stateDir =
      this.#options.stateDir ??
      (await mkdtemp(join(runtimeDir(), `corral-${this.name.replace(/[^\w.-]/g, "_")}-`)));
    this.#vm = await QemuVm.start(startScript, {
      name: this.name,
      stateDir: this.#stateDir,
      accelerator: this.#accelerator.accelerator,
      allowReboot: this.#options.allowReboot ?? false,
      env: this.#options.env ?? {},
    });
    this.#vm.console.onLine((line) => {
      for (const listener of this.#consoleListeners) listener(line);
    });
  }

  /** Starts the VM if needed and waits until the guest's backdoor shell answers. */
  async waitForShell(options: WaitOptions = {}): Promise<void> {
    await this.#connect(
      new Deadline(`${this.name}: waiting for the backdoor shell`, options, SHELL_TIMEOUT_MS),
    );
  }

  /**
   * Runs `command` with bash in the guest and returns its exit code, stdout and stderr.
   * Waits for the shell first. Throws TimeoutError (with the last console lines) when `timeout`
   * passes, MachineExitedError when the VM ends meanwhile.
   */
  async execute(command: string, options: ExecuteOptions = {}): Promise<ExecResult> {
    const deadline = new Deadline(
      `${this.name}: execute ${JSON.stringify(command)}`,
      options,
      EXECUTE_TIMEOUT_MS,
    );
    const shell = await this.#connect(deadline);
    try {
      return await shell.exec(command, deadline, () => this.#describe(), options);
    } catch (error) {
      throw await this.#explain(error, `running ${JSON.stringify(command)}`);
    }
  }

  /** Stops the VM (the guest gets no chance to flush: its disk is a throw-away overlay). */
  async shutdown(): Promise<void> {
    const vm = this.#vm;
    if (!vm) return;
    (await this.#shell?.catch(() => undefined))?.close();
    await vm[Symbol.asyncDispose]();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
    if (this.#stateDir && !this.#options.keepState && !this.#options.stateDir) {
      await rm(this.#stateDir, { recursive: true, force: true });
    }
  }

  async #bootFiles(): Promise<{ startScript: string; probeKernel: string | undefined }> {
    if (this.#options.startScript) {
      return { startScript: this.#options.startScript, probeKernel: await defaultProbeKernel() };
    }
    const image = await findImage(this.#options.image ?? DEFAULT_RECIPE);
    return {
      startScript: join(image.dir, image.manifest.startScript),
      probeKernel: join(image.dir, "vmlinuz"),
    };
  }

  #connect(deadline: Deadline): Promise<BackdoorShell> {
    this.#shell ??= (async () => {
      await this.start();
      const vm = this.#requireVm();
      try {
        const stream = await vm.shellStream(deadline);
        return await BackdoorShell.connect(stream, deadline, () => this.#describe());
      } catch (error) {
        throw await this.#explain(error, "waiting for the backdoor shell");
      }
    })();
    // A failed connection attempt may be retried by the next call.
    this.#shell.catch(() => {
      this.#shell = undefined;
    });
    return this.#shell;
  }

  #requireVm(): RunningVm {
    if (!this.#vm) {
      throw new CorralError(
        ErrorCodes.MACHINE_START_FAILED,
        `${this.name}: the machine is not started`,
        {
          machine: this.name,
        },
      );
    }
    return this.#vm;
  }

  #describe(): string[] {
    return consoleTail(this.consoleLines);
  }

  /** Turns a channel failure caused by the VM ending into a MachineExitedError. */
  async #explain(error: unknown, during: string): Promise<unknown> {
    const vm = this.#vm;
    if (!vm) return error;
    if (error instanceof CorralError && error.code !== ErrorCodes.GUEST_CHANNEL_BROKEN)
      return error;
    // The shell's socket can close a moment before QEMU's exit is reported.
    const info = await Promise.race([vm.exited, sleep(500, undefined, { ref: false })]);
    return info ? vm.exitError(during, info) : error;
  }
}

function nameFromStartScript(path: string | undefined): string | undefined {
  const match = path ? /run-(.+)-vm$/.exec(path) : null;
  return match?.[1];
}
