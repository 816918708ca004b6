// One running QEMU VM, owned or persistent: its process, its sockets, its QMP connection, and
// the optional abilities QEMU has (screenshots, keys, links, port forwards, HMP, snapshots,
// resizing).

import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../../deadline.ts";
import { CorralError, consoleTail, ErrorCodes, MachineExitedError } from "../../errors.ts";
import type { GuestPort, GuestTransport } from "../../guest/transport.ts";
import type { ExitInfo } from "../../host/supervised-process.ts";
import type {
  Abilities,
  Capability,
  HostForward,
  HostForwardTarget,
  OptionalCapability,
  Ownership,
  ResizeTarget,
  RunningVm,
  SavedState,
  VmmEvent,
  VmSize,
} from "../backend.ts";
import type { ConsoleLog } from "../console-log.ts";
import { ExitScope } from "../exit-scope.ts";
import { addHostForward, type MonitorCommand, removeHostForward } from "./hostfwd.ts";
import { hasHotplugged, hotplug, querySize } from "./hotplug.ts";
import { toQcode } from "./qcodes.ts";
import type { QemuSockets } from "./qemu-sockets.ts";
import { type QmpCommand, saveState } from "./qemu-state.ts";
import { QmpClient } from "./qmp-client.ts";

export const QEMU_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  "pause",
  "resize",
  "snapshot",
  "persistent",
  "screenshot",
  "keys",
  "block-links",
  "forward-port",
  "monitor",
  "reboot",
  "power-button",
]);

const STDERR_LINES_KEPT = 50;

/** What QemuVm needs of its process: a SupervisedProcess (owned) or a DetachedProcess. */
export interface VmmProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  readonly exitInfo: ExitInfo | undefined;
  kill(signal: NodeJS.Signals): void;
  stop(graceMs?: number): Promise<ExitInfo>;
}

export interface QemuVmParts {
  name: string;
  ownership: Ownership;
  process: VmmProcess;
  sockets: QemuSockets;
  console: ConsoleLog;
  /** QEMU's stderr lines so far (owned), or the file it writes them to (persistent). */
  stderr: { lines: string[] } | { file: string };
  /** Writes to the serial console's input. */
  consoleInput: (text: string) => void;
  /** Run when the VMM has ended, before its exit is reported. */
  onExit?: () => Promise<void>;
  /** What this VM can do (its machine's share of QEMU_CAPABILITIES). */
  capabilities: ReadonlySet<Capability>;
  /** Run after a resize with the VM's new size (a persistent VM records it). */
  onResized?: (size: VmSize) => Promise<void>;
  /** The transfer disk's file, when the VM has one. */
  transferDisk?: string | undefined;
}

export class QemuVm implements RunningVm {
  readonly backend = "qemu";
  readonly ownership: Ownership;
  readonly console: ConsoleLog;
  readonly transport: GuestTransport;
  readonly transferDisk: string | undefined;
  readonly scope: ExitScope;
  readonly #name: string;
  readonly #process: VmmProcess;
  readonly #sockets: QemuSockets;
  readonly #stderr: QemuVmParts["stderr"];
  readonly #consoleInput: (text: string) => void;
  readonly #capabilities: ReadonlySet<Capability>;
  readonly #onResized: QemuVmParts["onResized"];
  readonly #qmpCommand: QmpCommand = (deadline, name, args) => this.command(deadline, name, args);
  #qmp: Promise<QmpClient> | undefined;
  #forwarding: Promise<unknown> = Promise.resolve();
  #resizing: Promise<unknown> = Promise.resolve();

  constructor(parts: QemuVmParts) {
    this.#name = parts.name;
    this.ownership = parts.ownership;
    this.console = parts.console;
    this.#process = parts.process;
    this.#sockets = parts.sockets;
    this.#stderr = parts.stderr;
    this.#consoleInput = parts.consoleInput;
    this.#capabilities = parts.capabilities;
    this.#onResized = parts.onResized;
    this.transferDisk = parts.transferDisk;
    const exited = parts.process.exited.then(async (info) => {
      this.console.end();
      this.#sockets.close();
      await parts.onExit?.().catch(() => undefined);
      return info;
    });
    this.scope = new ExitScope(exited, (during, info) => this.exitError(during, info));
    this.transport = {
      isShellPerConnection: false,
      open: (port: GuestPort, deadline: Deadline) =>
        this.scope.race(
          this.#sockets.open(port, deadline),
          deadline,
          `opening the guest's ${port} port`,
        ),
    };
  }

  get exited(): Promise<ExitInfo> {
    return this.scope.exited;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.scope.exitInfo;
  }

  supports(capability: Capability): boolean {
    return this.#capabilities.has(capability);
  }

  ability<C extends OptionalCapability>(capability: C): Abilities[C] | undefined {
    return this.#capabilities.has(capability) ? (this as unknown as Abilities[C]) : undefined;
  }

  vmmStderr(): string[] {
    if ("lines" in this.#stderr) return [...this.#stderr.lines];
    try {
      const text = readFileSync(this.#stderr.file, "utf8");
      return text.split("\n").filter(Boolean).slice(-STDERR_LINES_KEPT);
    } catch {
      return [];
    }
  }

  /** The error for an operation that was pending when QEMU exited, with QEMU's own words. */
  exitError(during: string, info: ExitInfo): MachineExitedError {
    const how = info.signal
      ? `was killed by ${info.signal}`
      : info.code === null
        ? "exited"
        : `exited with code ${info.code}`;
    const stderr = this.vmmStderr().slice(-10);
    return new MachineExitedError(`${this.#name}: QEMU ${how} while ${during}`, {
      machine: this.#name,
      details: [
        ...(stderr.length > 0 ? ["QEMU said:", ...stderr.map((line) => `  | ${line}`)] : []),
        ...consoleTail(this.console.lines),
      ],
    });
  }

  sendConsole(text: string): void {
    this.#consoleInput(text);
  }

  /** The QMP connection, connected and negotiated once. */
  qmp(deadline: Deadline): Promise<QmpClient> {
    this.#qmp ??= this.#sockets.open("qmp", deadline).then((socket) => QmpClient.connect(socket));
    this.#qmp.catch(() => {
      this.#qmp = undefined;
    });
    return this.scope.race(this.#qmp, deadline, "connecting to QMP");
  }

  async command<T = unknown>(
    deadline: Deadline,
    name: string,
    args: Record<string, unknown> = {},
  ): Promise<T> {
    const qmp = await this.qmp(deadline);
    return this.scope.race(qmp.execute<T>(name, args, deadline), deadline, `running QMP ${name}`);
  }

  async isPaused(deadline: Deadline): Promise<boolean> {
    const { running } = await this.command<{ running: boolean }>(deadline, "query-status");
    return !running;
  }

  async pause(deadline: Deadline): Promise<void> {
    await this.command(deadline, "stop");
  }

  async resume(deadline: Deadline): Promise<void> {
    // A restored VM is paused once its state has loaded. A `cont` that comes while it loads is
    // lost: QEMU's autostart yields to the run state saved with the snapshot, which was paused.
    while (
      (await this.command<{ status: string }>(deadline, "query-status")).status === "inmigrate"
    ) {
      await sleep(2);
    }
    await this.command(deadline, "cont");
  }

  async stop(options: { force?: boolean } = {}): Promise<ExitInfo> {
    if (options.force) this.#process.kill("SIGKILL");
    // QEMU treats SIGTERM as a request to quit cleanly.
    return this.#process.stop();
  }

  async detach(): Promise<void> {
    if (this.ownership === "owned") {
      await this.stop();
      return;
    }
    this.#qmp?.then((qmp) => qmp.close()).catch(() => undefined);
    this.#sockets.close();
  }

  // --- abilities (reached through ability(capability)) ---------------------------------------

  async monitorCommand(deadline: Deadline, commandLine: string): Promise<string> {
    return this.command<string>(deadline, "human-monitor-command", { "command-line": commandLine });
  }

  async onEvent(deadline: Deadline, listener: (event: VmmEvent) => void): Promise<() => void> {
    return (await this.qmp(deadline)).onEvent(listener);
  }

  async screenshot(deadline: Deadline, path: string, format: "png" | "ppm" = "png"): Promise<void> {
    await this.command(deadline, "screendump", { filename: path, format });
  }

  async sendKeys(deadline: Deadline, keys: readonly string[], holdMs = 100): Promise<void> {
    const qcodes = keys.map((key) => ({ type: "qcode", data: toQcode(key) }));
    await this.command(deadline, "send-key", { keys: qcodes, "hold-time": holdMs });
  }

  async setLinksUp(deadline: Deadline, up: boolean): Promise<string[]> {
    const nics = await this.command<{ name: string }[]>(deadline, "query-rx-filter");
    for (const nic of nics) await this.command(deadline, "set_link", { name: nic.name, up });
    return nics.map((nic) => nic.name);
  }

  forwardPort(deadline: Deadline, forward: HostForward): Promise<number> {
    const monitor: MonitorCommand = (d, line) => this.monitorCommand(d, line);
    return this.#oneForwardAtATime(() => addHostForward(monitor, deadline, forward, this.#name));
  }

  unforwardPort(deadline: Deadline, target: HostForwardTarget): Promise<boolean> {
    const monitor: MonitorCommand = (d, line) => this.monitorCommand(d, line);
    return this.#oneForwardAtATime(() => removeHostForward(monitor, deadline, target, this.#name));
  }

  /** Forwards change one at a time: a port-0 forward finds its port by comparing tables. */
  #oneForwardAtATime<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#forwarding.then(work);
    this.#forwarding = result.catch(() => undefined);
    return result;
  }

  /** Presses the ACPI power button (QMP `system_powerdown`). */
  async pressPowerButton(deadline: Deadline): Promise<void> {
    await this.command(deadline, "system_powerdown");
  }

  /** Whether a guest-initiated reboot resets the VM (true) or ends QEMU (false). */
  async setRebootAllowed(deadline: Deadline, allowed: boolean): Promise<void> {
    await this.command(deadline, "set-action", { reboot: allowed ? "reset" : "shutdown" });
  }

  async saveState(deadline: Deadline, dir: string, nextOverlay: string): Promise<SavedState> {
    // A restore starts QEMU with the VM's devices on its command line: plugged-in ones are not.
    if (await hasHotplugged(this.#qmpCommand, deadline)) {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `${deadline.what}: the VM was resized while running, and its plugged-in vCPUs and memory would not be restored; stop and start it (it keeps its new size), then take the snapshot`,
        { machine: this.#name },
      );
    }
    return saveState(this.#qmpCommand, deadline, this.#process.pid, dir, nextOverlay);
  }

  size(deadline: Deadline): Promise<VmSize> {
    return querySize(this.#qmpCommand, deadline);
  }

  /** One at a time: each plugs in what its target lacks as QEMU reports it then. */
  resize(deadline: Deadline, target: ResizeTarget): Promise<void> {
    const resized = this.#resizing.then(() => this.#resize(deadline, target));
    this.#resizing = resized.catch(() => undefined);
    return resized;
  }

  async #resize(deadline: Deadline, target: ResizeTarget): Promise<void> {
    try {
      await hotplug(this.#qmpCommand, deadline, target);
    } finally {
      // What was plugged in before a failure is recorded too.
      const size = this.#onResized && (await this.size(deadline).catch(() => undefined));
      if (size) await this.#onResized?.(size);
    }
  }
}
