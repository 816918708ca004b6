// One running VM of an API-driven VMM (Firecracker, Cloud Hypervisor): its process, its API
// client, its serial console, and the guest's ports over hybrid vsock. What differs between the
// two VMMs (pausing, snapshots, resizing) is the backend's MicroVmControl.

import { readFileSync } from "node:fs";
import { Deadline } from "../deadline.ts";
import { consoleTail, MachineExitedError } from "../errors.ts";
import { HybridVsockTransport } from "../guest/hybrid-vsock.ts";
import type { GuestPort, GuestTransport } from "../guest/transport.ts";
import type { ExitInfo } from "../host/supervised-process.ts";
import type {
  Abilities,
  Capability,
  OptionalCapability,
  Ownership,
  ResizeTarget,
  RunningVm,
  SavedState,
  VmSize,
} from "./backend.ts";
import type { ConsoleFollower } from "./console-follow.ts";
import type { ConsoleLog } from "./console-log.ts";
import { ExitScope } from "./exit-scope.ts";
import type { VmmProcess } from "./qemu/qemu-vm.ts";

const STDERR_LINES_KEPT = 50;

/** What differs between the VMMs: the API calls behind each operation. */
export interface MicroVmControl {
  isPaused(deadline: Deadline): Promise<boolean>;
  pause(deadline: Deadline): Promise<void>;
  resume(deadline: Deadline): Promise<void>;
  /** Asks the guest to shut down (ACPI power button, or Ctrl+Alt+Del on Firecracker). */
  requestShutdown(deadline: Deadline): Promise<void>;
  saveState?(deadline: Deadline, dir: string, nextOverlay: string): Promise<SavedState>;
  size?(deadline: Deadline): Promise<VmSize>;
  resize?(deadline: Deadline, target: ResizeTarget): Promise<void>;
  /** Closes the API connection (the VMM goes on). */
  close(): void;
}

export interface MicroVmParts {
  backend: string;
  /** The VMM's name in messages ("Firecracker"). */
  vmm: string;
  name: string;
  ownership: Ownership;
  process: VmmProcess;
  console: ConsoleLog;
  /** The VMM's stderr lines so far (owned), or the file it writes them to (persistent). */
  stderr: { lines: string[] } | { file: string };
  consoleInput: (text: string) => void;
  /** A persistent VMM's console log, followed until the VMM exits or the VM is detached. */
  consoleFollower?: ConsoleFollower | undefined;
  /** The VMM's hybrid vsock socket. */
  vsockSocket: string;
  capabilities: ReadonlySet<Capability>;
  control: MicroVmControl;
  /** Run when the VMM has ended, before its exit is reported. */
  onExit?: () => Promise<void>;
  /** How long a graceful stop waits for the guest before the VMM is killed; default 3000 ms. */
  stopGraceMs?: number;
}

export class MicroVm implements RunningVm {
  readonly backend: string;
  readonly ownership: Ownership;
  readonly console: ConsoleLog;
  readonly transport: GuestTransport;
  readonly scope: ExitScope;
  readonly #parts: MicroVmParts;

  constructor(parts: MicroVmParts) {
    this.#parts = parts;
    this.backend = parts.backend;
    this.ownership = parts.ownership;
    this.console = parts.console;
    const exited = parts.process.exited.then(async (info) => {
      await parts.consoleFollower?.stop();
      this.console.end();
      parts.control.close();
      await parts.onExit?.().catch(() => undefined);
      return info;
    });
    this.scope = new ExitScope(exited, (during, info) => this.exitError(during, info));
    const vsock = new HybridVsockTransport(parts.vsockSocket);
    this.transport = {
      isShellPerConnection: vsock.isShellPerConnection,
      open: (port: GuestPort, deadline: Deadline) =>
        this.scope.race(vsock.open(port, deadline), deadline, `opening the guest's ${port} port`),
    };
  }

  get exited(): Promise<ExitInfo> {
    return this.scope.exited;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.scope.exitInfo;
  }

  supports(capability: Capability): boolean {
    return this.#parts.capabilities.has(capability);
  }

  ability<C extends OptionalCapability>(capability: C): Abilities[C] | undefined {
    return this.supports(capability) ? (this as unknown as Abilities[C]) : undefined;
  }

  vmmStderr(): string[] {
    const { stderr } = this.#parts;
    if ("lines" in stderr) return [...stderr.lines];
    try {
      return readFileSync(stderr.file, "utf8")
        .split("\n")
        .filter(Boolean)
        .slice(-STDERR_LINES_KEPT);
    } catch {
      return [];
    }
  }

  exitError(during: string, info: ExitInfo): MachineExitedError {
    const how = info.signal
      ? `was killed by ${info.signal}`
      : info.code === null
        ? "exited"
        : `exited with code ${info.code}`;
    const stderr = this.vmmStderr().slice(-10);
    const { vmm, name } = this.#parts;
    return new MachineExitedError(`${name}: ${vmm} ${how} while ${during}`, {
      machine: name,
      details: [
        ...(stderr.length > 0 ? [`${vmm} said:`, ...stderr.map((line) => `  | ${line}`)] : []),
        ...consoleTail(this.console.lines),
      ],
    });
  }

  sendConsole(text: string): void {
    this.#parts.consoleInput(text);
  }

  isPaused(deadline: Deadline): Promise<boolean> {
    return this.scope.race(
      this.#parts.control.isPaused(deadline),
      deadline,
      "asking the VM's state",
    );
  }

  pause(deadline: Deadline): Promise<void> {
    return this.scope.race(this.#parts.control.pause(deadline), deadline, "pausing");
  }

  resume(deadline: Deadline): Promise<void> {
    return this.scope.race(this.#parts.control.resume(deadline), deadline, "resuming");
  }

  /**
   * Graceful: asks the guest to shut down and gives it the grace period, then SIGTERM and
   * SIGKILL (both VMMs end at once on SIGTERM, without the guest's say).
   */
  async stop(options: { force?: boolean } = {}): Promise<ExitInfo> {
    const { process, control, stopGraceMs = 3000 } = this.#parts;
    if (options.force || process.exitInfo) {
      process.kill("SIGKILL");
      await process.stop();
      return this.exited;
    }
    const deadline = new Deadline("stopping the VM", { timeout: stopGraceMs }, stopGraceMs);
    const asked = await control.requestShutdown(deadline).then(
      () => true,
      () => false,
    );
    if (asked) await deadline.race(process.exited).catch(() => undefined);
    await process.stop();
    // Once its console is read to the end (a persistent VMM's last words are in its log).
    return this.exited;
  }

  async detach(): Promise<void> {
    if (this.ownership === "owned") {
      await this.stop();
      return;
    }
    await this.#parts.consoleFollower?.stop();
    this.#parts.control.close();
  }

  // --- abilities (reached through ability(capability)) ---------------------------------------

  saveState(deadline: Deadline, dir: string, nextOverlay: string): Promise<SavedState> {
    const save = this.#parts.control.saveState;
    if (!save) throw new Error("saveState without the snapshot capability");
    return this.scope.race(
      save.call(this.#parts.control, deadline, dir, nextOverlay),
      deadline,
      "saving the VM's state",
    );
  }

  size(deadline: Deadline): Promise<VmSize> {
    const size = this.#parts.control.size;
    if (!size) throw new Error("size without the resize capability");
    return this.scope.race(size.call(this.#parts.control, deadline), deadline, "reading its size");
  }

  resize(deadline: Deadline, target: ResizeTarget): Promise<void> {
    const resize = this.#parts.control.resize;
    if (!resize) throw new Error("resize without the resize capability");
    return this.scope.race(
      resize.call(this.#parts.control, deadline, target),
      deadline,
      "resizing",
    );
  }

  pressPowerButton(deadline: Deadline): Promise<void> {
    return this.scope.race(
      this.#parts.control.requestShutdown(deadline),
      deadline,
      "pressing the power button",
    );
  }
}
