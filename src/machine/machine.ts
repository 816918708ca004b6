// Machine: one VM and the OS inside it, whatever the backend. Lifecycle, the guest shell, and
// the verbs of the NixOS test driver in camelCase. Waits poll inside the guest (one round trip)
// or follow events; none polls from the host.

import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Capability, RunningVm } from "../backends/backend.ts";
import { QemuVm } from "../backends/qemu/qemu-vm.ts";
import { Deadline, formatMs, type WaitOptions } from "../deadline.ts";
import {
  CorralError,
  consoleTail,
  ErrorCodes,
  GuestCommandError,
  MachineExitedError,
  TimeoutError,
  UnsupportedError,
} from "../errors.ts";
import { BackdoorShell, type ExecResult as RawExecResult } from "../guest/backdoor-shell.ts";
import { shellQuote } from "../guest/shell-quote.ts";
import { TransferPort } from "../guest/transfer-port.ts";
import {
  type Accelerator,
  type AcceleratorVerdict,
  resolveAccelerator,
} from "../host/accelerator.ts";
import { runtimeDir } from "../host/paths.ts";
import { releaseDir, watchDir } from "../host/watchdog.ts";
import { defaultProbeKernel, findImage } from "../images/image-cache.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import {
  EXIT_UNIT_FAILED,
  EXIT_UNIT_INACTIVE,
  EXIT_UNIT_NOT_FOUND,
  EXIT_WAIT_TIMEOUT,
  openPortCommand,
  openUnixSocketCommand,
  systemctlCommand,
  ttyChangeScript,
  ttyTextCommand,
  untilScript,
  waitForUnitScript,
} from "./guest-scripts.ts";
import { charToKeyCombo, keyComboToQcodes } from "./keys.ts";

export interface MachineOptions {
  /** Name used in messages and logs; defaults to the start script's `run-<name>-vm` or the image. */
  name?: string;
  /** Image to boot: a recipe name or a cache entry id. Default: `debian-12`. */
  image?: string;
  /** A `run-<name>-vm` start script to run instead of an image (Nix-built or corral-built). */
  startScript?: string;
  /** Force `kvm` or `tcg`; by default KVM is used where it was found to work. */
  accel?: Accelerator;
  /** Folder for the VM's state (sockets, disk overlay); emptied at start unless `keepState`. */
  stateDir?: string;
  /** Keep the state folder: at start (reuse the disk overlay) and when disposed. */
  keepState?: boolean;
  /** Keep the VM running across a guest-initiated reboot. */
  allowReboot?: boolean;
  /** Shared with the guest as `SHARED_DIR` (for start scripts that mount it). */
  sharedDir?: string;
  /** Extra environment for the start script, e.g. `QEMU_OPTS` or `QEMU_KERNEL_PARAMS`. */
  env?: Record<string, string>;
}

export interface ExecuteOptions extends WaitOptions {
  /** Called with stdout bytes as they arrive. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with stderr bytes as they arrive. */
  onStderr?: (chunk: Buffer) => void;
}

/** What a guest command did. Output is text unless `encoding: "buffer"` was asked for. */
export interface ExecResult<Output extends string | Buffer = string> {
  exitCode: number;
  stdout: Output;
  stderr: Output;
}

export interface UserOptions extends WaitOptions {
  /** Act on this user's systemd instance (`systemctl --user`) instead of the system's. */
  user?: string;
}

export interface PortOptions extends WaitOptions {
  /** Address to check in the guest; default `localhost`. */
  address?: string;
}

type CommandsAndOptions = string[] | [...string[], WaitOptions];

const SHELL_TIMEOUT_MS = 300_000;
const EXECUTE_TIMEOUT_MS = 900_000;
const WAIT_TIMEOUT_MS = 900_000;
const MONITOR_TIMEOUT_MS = 30_000;
/** Host-side allowance beyond a limit the guest enforces itself. */
const GUEST_LIMIT_MARGIN_MS = 10_000;

/** One virtual machine. Dispose it (`await using`) to stop the VM and remove its state. */
export class Machine implements AsyncDisposable {
  readonly name: string;
  readonly #options: MachineOptions;
  #vm: RunningVm | undefined;
  #starting: Promise<RunningVm> | undefined;
  #shell: Promise<BackdoorShell> | undefined;
  #transfer: Promise<TransferPort> | undefined;
  #isShellUp = false;
  #stateDir: string | undefined;
  #ownsStateDir = false;
  #accelerator: AcceleratorVerdict | undefined;
  #consoleCursor = 0;
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

  /** The VM's state folder; undefined before start(). */
  get stateDir(): string | undefined {
    return this.#stateDir;
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

  /** True once the VM runs and its backdoor shell has answered. */
  isUp(): boolean {
    return this.#vm !== undefined && !this.#vm.hasExited && this.#isShellUp;
  }

  // --- lifecycle ---------------------------------------------------------------------------

  /** Starts the VM; the guest is still booting when this returns. Idempotent. */
  start(): Promise<void> {
    this.#starting ??= this.#launch();
    return this.#starting.then(() => undefined);
  }

  /** Starts the VM if needed and waits until the guest's backdoor shell answers. */
  async waitForShell(options: WaitOptions = {}): Promise<void> {
    await this.#connect(new Deadline(`${this.name}: waitForShell`, options, SHELL_TIMEOUT_MS));
  }

  /** Powers the guest off (`poweroff`) and waits for the VM to end. */
  async shutdown(options: WaitOptions = {}): Promise<void> {
    const vm = this.#vm;
    if (!vm || vm.hasExited) return;
    const deadline = new Deadline(`${this.name}: shutdown`, options, SHELL_TIMEOUT_MS);
    await this.#fireAndForget("poweroff", deadline);
    await this.waitForShutdown(options);
  }

  /** Ends the VM at once, as a power cut would. */
  async crash(): Promise<void> {
    const vm = this.#vm;
    if (!vm || vm.hasExited) return;
    this.#shellGone("the machine crashed");
    await vm.stop({ force: true });
  }

  /**
   * Reboots the guest (`reboot`) and waits until its shell answers again. Works whether or not
   * `allowReboot` was set: the VM is told to reset, not to exit, for this reboot.
   */
  async reboot(options: WaitOptions = {}): Promise<void> {
    const vm = this.#requireVm("reboot", "reboot");
    const deadline = new Deadline(`${this.name}: reboot`, options, SHELL_TIMEOUT_MS);
    if (!this.#options.allowReboot) await vm.setRebootAllowed(deadline, true);
    const reset = vm.nextReset(deadline);
    await this.#fireAndForget("reboot", deadline);
    await this.#explained(reset, "rebooting");
    const shell = await this.#connect(deadline);
    await this.#explained(
      shell.reconnect(deadline, () => this.#describe()),
      "waiting for the shell after reboot",
    );
    this.#isShellUp = true;
    if (!this.#options.allowReboot) await vm.setRebootAllowed(deadline, false);
  }

  /** Waits until the VM has ended (the guest powered off or crashed). */
  async waitForShutdown(options: WaitOptions = {}): Promise<void> {
    const vm = this.#vm;
    if (!vm) return;
    const deadline = new Deadline(`${this.name}: waitForShutdown`, options, SHELL_TIMEOUT_MS);
    await new Promise<void>((resolvePromise, reject) => {
      const onAbort = () => reject(deadline.error(this.#describe(), this.name));
      deadline.signal.addEventListener("abort", onAbort, { once: true });
      void vm.exited.then(() => {
        deadline.signal.removeEventListener("abort", onAbort);
        resolvePromise();
      });
    });
    this.#shellGone("the machine shut down");
  }

  /** Stops the VM if it runs and removes its state folder (unless `keepState`). */
  async [Symbol.asyncDispose](): Promise<void> {
    const vm = this.#vm;
    this.#shellGone("the machine was disposed");
    if (vm) await vm[Symbol.asyncDispose]();
    if (this.#stateDir && this.#ownsStateDir && !this.#options.keepState) {
      await rm(this.#stateDir, { recursive: true, force: true });
      releaseDir(this.#stateDir);
    }
  }

  // --- commands ----------------------------------------------------------------------------

  /**
   * Runs `command` with bash in the guest and returns its exit code, stdout and stderr (text, or
   * Buffers with `encoding: "buffer"`). Starts the VM and waits for the shell first. A `timeout`
   * is enforced in the guest (the command is killed, status 124) and on the host; it throws
   * TimeoutError either way. Throws MachineExitedError at once if the VM ends meanwhile.
   */
  execute(
    command: string,
    options?: ExecuteOptions & { encoding?: "utf8" },
  ): Promise<ExecResult<string>>;
  execute(
    command: string,
    options: ExecuteOptions & { encoding: "buffer" },
  ): Promise<ExecResult<Buffer>>;
  async execute(
    command: string,
    options: ExecuteOptions & { encoding?: "utf8" | "buffer" } = {},
  ): Promise<ExecResult<string> | ExecResult<Buffer>> {
    const raw = await this.#execute(command, options);
    return options.encoding === "buffer" ? raw : textResult(raw);
  }

  /** Runs each command; throws GuestCommandError at the first that fails. Returns their stdout. */
  async succeed(...args: CommandsAndOptions): Promise<string> {
    const { commands, options } = splitOptions(args);
    let output = "";
    for (const command of commands) {
      const result = await this.execute(command, options);
      if (result.exitCode !== 0) {
        throw new GuestCommandError(
          `${this.name}: command failed with exit code ${result.exitCode}: ${command}`,
          {
            command,
            ...result,
          },
          { machine: this.name },
        );
      }
      output += result.stdout;
    }
    return output;
  }

  /** Runs each command; throws GuestCommandError at the first that succeeds. Returns their stdout. */
  async fail(...args: CommandsAndOptions): Promise<string> {
    const { commands, options } = splitOptions(args);
    let output = "";
    for (const command of commands) {
      const result = await this.execute(command, options);
      if (result.exitCode === 0) {
        throw new GuestCommandError(
          `${this.name}: command succeeded but was expected to fail: ${command}`,
          {
            command,
            ...result,
          },
          { machine: this.name },
        );
      }
      output += result.stdout;
    }
    return output;
  }

  /** Repeats `command` in the guest until it succeeds; returns the stdout of that run. */
  waitUntilSucceeds(command: string, options: WaitOptions = {}): Promise<string> {
    return this.#until(command, true, `waitUntilSucceeds(${JSON.stringify(command)})`, options);
  }

  /** Repeats `command` in the guest until it fails; returns the stdout of that run. */
  waitUntilFails(command: string, options: WaitOptions = {}): Promise<string> {
    return this.#until(command, false, `waitUntilFails(${JSON.stringify(command)})`, options);
  }

  /** Sleeps `seconds` in the guest's time (so a paused or slow guest sleeps as long). */
  async sleep(seconds: number): Promise<void> {
    await this.succeed(`sleep ${Number(seconds)}`);
  }

  /** Waits until `path` exists in the guest. */
  async waitForFile(path: string, options: WaitOptions = {}): Promise<void> {
    await this.#until(
      `test -e ${shellQuote(path)}`,
      true,
      `waitForFile(${JSON.stringify(path)})`,
      options,
    );
  }

  /** Waits until something listens on TCP `port` in the guest. */
  async waitForOpenPort(port: number, options: PortOptions = {}): Promise<void> {
    const address = options.address ?? "localhost";
    await this.#until(
      openPortCommand(port, address),
      true,
      `waitForOpenPort(${address}:${port})`,
      options,
    );
  }

  /** Waits until nothing listens on TCP `port` in the guest any more. */
  async waitForClosedPort(port: number, options: PortOptions = {}): Promise<void> {
    const address = options.address ?? "localhost";
    await this.#until(
      openPortCommand(port, address),
      false,
      `waitForClosedPort(${address}:${port})`,
      options,
    );
  }

  /** Waits until a unix socket at `path` accepts connections (or exists, for datagram sockets). */
  async waitForOpenUnixSocket(
    path: string,
    options: WaitOptions & { isDatagram?: boolean } = {},
  ): Promise<void> {
    const command = openUnixSocketCommand(path, options.isDatagram ?? false);
    await this.#until(command, true, `waitForOpenUnixSocket(${JSON.stringify(path)})`, options);
  }

  // --- systemd -----------------------------------------------------------------------------

  /** Runs `systemctl <query>` (for `user`'s manager with `{ user }`); returns the result. */
  systemctl(query: string, options: UserOptions = {}): Promise<ExecResult<string>> {
    return this.execute(systemctlCommand(query, options.user), options);
  }

  /** `systemctl start unit`; returns the result (it does not throw when the unit fails). */
  startJob(unit: string, options: UserOptions = {}): Promise<ExecResult<string>> {
    return this.systemctl(`start ${shellQuote(unit)}`, options);
  }

  /** `systemctl stop unit`; returns the result. */
  stopJob(unit: string, options: UserOptions = {}): Promise<ExecResult<string>> {
    return this.systemctl(`stop ${shellQuote(unit)}`, options);
  }

  /** Every property of `unit` (`systemctl show`). Throws CORRAL_UNIT_NOT_FOUND for unknown units. */
  async getUnitInfo(unit: string, options: UserOptions = {}): Promise<Record<string, string>> {
    const result = await this.systemctl(`show --no-pager ${shellQuote(unit)}`, options);
    if (result.exitCode !== 0) {
      throw new GuestCommandError(`${this.name}: systemctl show ${unit} failed`, {
        command: `systemctl show ${unit}`,
        ...result,
      });
    }
    const info: Record<string, string> = {};
    for (const line of result.stdout.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) info[line.slice(0, at)] = line.slice(at + 1);
    }
    if (info.LoadState === "not-found") throw this.#unitNotFound(unit);
    return info;
  }

  /** One property of `unit`, e.g. `ActiveState`. */
  async getUnitProperty(
    unit: string,
    property: string,
    options: UserOptions = {},
  ): Promise<string> {
    const info = await this.getUnitInfo(unit, options);
    const value = info[property];
    if (value === undefined) {
      throw new CorralError(
        ErrorCodes.USAGE,
        `${this.name}: unit ${unit} has no property ${property}`,
        {
          machine: this.name,
        },
      );
    }
    return value;
  }

  /** Throws CORRAL_UNIT_STATE unless `unit`'s ActiveState is `state` (default `active`). */
  async requireUnitState(unit: string, state = "active", options: UserOptions = {}): Promise<void> {
    const actual = await this.getUnitProperty(unit, "ActiveState", options);
    if (actual !== state) {
      throw new CorralError(
        ErrorCodes.UNIT_STATE,
        `${this.name}: unit ${unit} is ${actual}, expected ${state}`,
        {
          machine: this.name,
        },
      );
    }
  }

  /**
   * Waits until `unit` is active. Fails at once when it does not exist, has failed, or is
   * inactive with no job queued that could start it.
   */
  async waitForUnit(unit: string, options: UserOptions = {}): Promise<void> {
    const what = `waitForUnit(${JSON.stringify(unit)}${options.user ? `, user ${options.user}` : ""})`;
    const deadline = new Deadline(`${this.name}: ${what}`, options, WAIT_TIMEOUT_MS);
    const result = await this.#execute(
      waitForUnitScript(unit, deadline.remainingMs, options.user),
      { timeout: deadline.remainingMs, ...(options.signal ? { signal: options.signal } : {}) },
      true,
    );
    const state = result.stdout.toString().trim().replace(/\n/g, ", ");
    switch (result.exitCode) {
      case 0:
        return;
      case EXIT_UNIT_NOT_FOUND:
        throw this.#unitNotFound(unit);
      case EXIT_UNIT_FAILED:
        throw new CorralError(
          ErrorCodes.UNIT_STATE,
          `${this.name}: unit ${unit} failed (${state})`,
          {
            machine: this.name,
            details: consoleTail(this.consoleLines),
          },
        );
      case EXIT_UNIT_INACTIVE:
        throw new CorralError(
          ErrorCodes.UNIT_STATE,
          `${this.name}: unit ${unit} is inactive and no job is pending to start it (${state})`,
          { machine: this.name },
        );
      case EXIT_WAIT_TIMEOUT:
        throw new TimeoutError(
          `${this.name}: ${what}: timed out after ${formatMs(deadline.timeoutMs)}`,
          {
            machine: this.name,
            details: [`Last state: ${state}`, ...consoleTail(this.consoleLines)],
          },
        );
      default:
        throw new GuestCommandError(`${this.name}: ${what}: the wait script failed`, {
          command: what,
          ...textResult(result),
        });
    }
  }

  // --- console, screen and keyboard --------------------------------------------------------

  /** The serial console so far, one string. */
  getConsoleLog(): string {
    return this.consoleLines.join("\n");
  }

  /**
   * Waits for a console line matching `pattern`, looking first at the lines that arrived since
   * the previous successful wait. Returns the matching line.
   */
  async waitForConsoleText(pattern: RegExp | string, options: WaitOptions = {}): Promise<string> {
    const regex = typeof pattern === "string" ? new RegExp(pattern) : pattern;
    const vm = this.#vm ?? (await this.#launchOnce());
    const deadline = new Deadline(
      `${this.name}: waitForConsoleText(${regex})`,
      options,
      WAIT_TIMEOUT_MS,
    );
    const lines = vm.console.lines;
    for (; this.#consoleCursor < lines.length; this.#consoleCursor++) {
      const line = lines[this.#consoleCursor] ?? "";
      if (regex.test(line)) {
        this.#consoleCursor++;
        return line;
      }
    }
    const { promise, resolve: found } = Promise.withResolvers<string>();
    const stop = vm.console.onLine((line) => {
      if (regex.test(line)) found(line);
    });
    try {
      const line = await this.#whileAlive(promise, deadline);
      this.#consoleCursor = vm.console.lines.length;
      return line;
    } finally {
      stop();
    }
  }

  /** Types `text` on the serial console (the guest's ttyS0 input). */
  sendConsole(text: string): void {
    this.#requireVm("sendConsole").sendConsole(text);
  }

  /** The text on virtual terminal `tty` (1 = tty1), one screen line per line. */
  async getTtyText(tty = 1): Promise<string> {
    return this.succeed(ttyTextCommand(tty));
  }

  /** Waits until the text on virtual terminal `tty` matches `pattern`; returns that text. */
  async waitUntilTtyMatches(
    tty: number,
    pattern: RegExp | string,
    options: WaitOptions = {},
  ): Promise<string> {
    const regex = typeof pattern === "string" ? new RegExp(pattern, "m") : pattern;
    const deadline = new Deadline(
      `${this.name}: waitUntilTtyMatches(${tty}, ${regex})`,
      options,
      WAIT_TIMEOUT_MS,
    );
    let text: string | undefined;
    let hash: string | undefined;
    for (;;) {
      // Each round trip returns as soon as the screen changes (or after a few seconds).
      const wait = Math.min(5000, deadline.remainingMs);
      const result = await this.#execute(
        ttyChangeScript(tty, hash, wait),
        { timeout: wait, ...(options.signal ? { signal: options.signal } : {}) },
        true,
      );
      if (result.exitCode === 0) {
        text = result.stdout.toString().replace(/\n$/, "");
        hash = createHash("sha256").update(text).digest("hex");
        if (regex.test(text)) return text;
      }
      if (deadline.remainingMs <= 0) {
        throw new TimeoutError(
          `${deadline.what}: timed out after ${formatMs(deadline.timeoutMs)}`,
          {
            machine: this.name,
            details: [
              "Last screen:",
              ...(text ?? "(none)").split("\n").map((line) => `  | ${line}`),
            ],
          },
        );
      }
    }
  }

  /** Presses a key combination, NixOS style: "ctrl-alt-delete", "shift-a", "ret". */
  async sendKey(key: string, options: WaitOptions = {}): Promise<void> {
    const vm = this.#requireVm("sendKey", "keys");
    const deadline = new Deadline(`${this.name}: sendKey(${key})`, options, MONITOR_TIMEOUT_MS);
    await vm.sendKeys(deadline, keyComboToQcodes(key));
  }

  /** Types `text` on the keyboard, one key press per character (US layout). */
  async sendChars(text: string, options: WaitOptions & { delayMs?: number } = {}): Promise<void> {
    for (const char of text) {
      const combo = charToKeyCombo(char);
      if (!combo) {
        throw new CorralError(
          ErrorCodes.USAGE,
          `${this.name}: sendChars cannot type ${JSON.stringify(char)}`,
          {
            machine: this.name,
          },
        );
      }
      await this.sendKey(combo, options);
      if (options.delayMs) await sleep(options.delayMs);
    }
  }

  /** Runs a monitor command line (HMP for QEMU) and returns its output. */
  async sendMonitorCommand(commandLine: string, options: WaitOptions = {}): Promise<string> {
    const vm = this.#requireVm("sendMonitorCommand", "monitor");
    const deadline = new Deadline(
      `${this.name}: sendMonitorCommand(${commandLine})`,
      options,
      MONITOR_TIMEOUT_MS,
    );
    return vm.monitorCommand(deadline, commandLine);
  }

  /** Writes the screen as a PNG file; `.png` is added when `path` has no extension. Returns the path. */
  async screenshot(path: string, options: WaitOptions = {}): Promise<string> {
    const vm = this.#requireVm("screenshot", "screenshot");
    const file = resolve(/\.[^/]+$/.test(path) ? path : `${path}.png`);
    const deadline = new Deadline(`${this.name}: screenshot(${file})`, options, MONITOR_TIMEOUT_MS);
    await vm.screenshot(deadline, file);
    return file;
  }

  // --- network -----------------------------------------------------------------------------

  /** Makes `127.0.0.1:hostPort` on the host reach `guestPort` in the guest (TCP). */
  async forwardPort(hostPort: number, guestPort: number, options: WaitOptions = {}): Promise<void> {
    const vm = this.#requireVm("forwardPort", "forward-port");
    const deadline = new Deadline(
      `${this.name}: forwardPort(${hostPort}, ${guestPort})`,
      options,
      MONITOR_TIMEOUT_MS,
    );
    await vm.forwardPort(deadline, hostPort, guestPort);
  }

  /** Takes every network link of the machine down, as if its cables were pulled. */
  async block(options: WaitOptions = {}): Promise<void> {
    const vm = this.#requireVm("block", "block-links");
    await vm.setLinksUp(new Deadline(`${this.name}: block`, options, MONITOR_TIMEOUT_MS), false);
  }

  /** Brings the links taken down by block() up again. */
  async unblock(options: WaitOptions = {}): Promise<void> {
    const vm = this.#requireVm("unblock", "block-links");
    await vm.setLinksUp(new Deadline(`${this.name}: unblock`, options, MONITOR_TIMEOUT_MS), true);
  }

  // --- files -------------------------------------------------------------------------------

  /** Copies the host file `source` to `target` in the guest (parent folders are created). */
  async copyFromHost(source: string, target: string, options: WaitOptions = {}): Promise<void> {
    const deadline = new Deadline(
      `${this.name}: copyFromHost(${source}, ${target})`,
      options,
      EXECUTE_TIMEOUT_MS,
    );
    const shell = await this.#connect(deadline);
    const port = await this.#transferPort(deadline);
    await this.#explained(
      port.toGuest(shell, resolve(source), target, deadline, () => this.#describe()),
      `copying ${source} in`,
    );
  }

  /** Copies the guest file `source` to `target` on the host (parent folders are created). */
  async copyFromVm(source: string, target: string, options: WaitOptions = {}): Promise<void> {
    const deadline = new Deadline(
      `${this.name}: copyFromVm(${source}, ${target})`,
      options,
      EXECUTE_TIMEOUT_MS,
    );
    const shell = await this.#connect(deadline);
    const port = await this.#transferPort(deadline);
    await mkdir(dirname(resolve(target)), { recursive: true });
    await this.#explained(
      port.toHost(shell, source, resolve(target), deadline, () => this.#describe()),
      `copying ${source} out`,
    );
  }

  // --- internals ---------------------------------------------------------------------------

  #transferPort(deadline: Deadline): Promise<TransferPort> {
    const vm = this.#requireVm("file transfer");
    this.#transfer ??= vm.transferStream(deadline).then((socket) => new TransferPort(socket));
    this.#transfer.catch(() => {
      this.#transfer = undefined;
    });
    return this.#transfer;
  }

  async #launch(): Promise<RunningVm> {
    QemuVm.requireHostTools();
    const { startScript, probeKernel } = await this.#bootFiles();
    this.#accelerator = await resolveAccelerator({ forced: this.#options.accel, probeKernel });
    this.#stateDir = await this.#prepareStateDir();
    const vm = await QemuVm.start(startScript, {
      name: this.name,
      stateDir: this.#stateDir,
      accelerator: this.#accelerator.accelerator,
      allowReboot: this.#options.allowReboot ?? false,
      env: {
        ...(this.#options.sharedDir ? { SHARED_DIR: resolve(this.#options.sharedDir) } : {}),
        ...this.#options.env,
      },
    });
    vm.console.onLine((line) => {
      for (const listener of this.#consoleListeners) listener(line);
    });
    void vm.exited.then(() => this.#shellGone("the machine exited"));
    this.#vm = vm;
    return vm;
  }

  #launchOnce(): Promise<RunningVm> {
    this.#starting ??= this.#launch();
    return this.#starting;
  }

  async #prepareStateDir(): Promise<string> {
    const given = this.#options.stateDir;
    if (!given) {
      this.#ownsStateDir = true;
      const dir = await mkdtemp(
        join(runtimeDir(), `corral-${this.name.replace(/[^\w.-]/g, "_")}-`),
      );
      if (!this.#options.keepState) watchDir(dir);
      return dir;
    }
    const dir = resolve(given);
    if (!this.#options.keepState) await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async #bootFiles(): Promise<{ startScript: string; probeKernel: string | undefined }> {
    if (this.#options.startScript) {
      return {
        startScript: resolve(this.#options.startScript),
        probeKernel: await defaultProbeKernel(),
      };
    }
    const image = await findImage(this.#options.image ?? DEFAULT_RECIPE);
    return {
      startScript: join(image.dir, image.manifest.startScript),
      probeKernel: join(image.dir, "vmlinuz"),
    };
  }

  #connect(deadline: Deadline): Promise<BackdoorShell> {
    const vm = this.#vm;
    if (vm?.exitInfo) return Promise.reject(vm.exitError("connecting to the shell", vm.exitInfo));
    this.#shell ??= (async () => {
      const vm = await this.#launchOnce();
      try {
        const streams = await vm.shellStreams(deadline);
        const shell = await BackdoorShell.connect(streams, deadline, () => this.#describe());
        this.#isShellUp = true;
        return shell;
      } catch (error) {
        throw await this.#explain(error, "waiting for the backdoor shell");
      }
    })();
    this.#shell.catch(() => {
      this.#shell = undefined;
    });
    return this.#shell;
  }

  /**
   * Runs `command`. A `timeout` is enforced by the guest's `timeout` program, unless
   * `limitsItself` says the command is a corral script that ends by itself at its limit.
   */
  async #execute(
    command: string,
    options: ExecuteOptions,
    limitsItself = false,
  ): Promise<RawExecResult> {
    const what = `${this.name}: execute(${JSON.stringify(command.length > 200 ? `${command.slice(0, 200)}…` : command)})`;
    const hostLimit =
      options.timeout === undefined ? undefined : options.timeout + GUEST_LIMIT_MARGIN_MS;
    const deadline = new Deadline(
      what,
      { ...options, ...(hostLimit ? { timeout: hostLimit } : {}) },
      EXECUTE_TIMEOUT_MS,
    );
    const shell = await this.#connect(deadline);
    const inGuestLimit = options.timeout !== undefined && !limitsItself;
    const guestCommand = inGuestLimit
      ? `timeout -k 2 ${((options.timeout ?? 0) / 1000).toFixed(3)} bash -c ${shellQuote(command)}`
      : command;
    const result = await this.#explained(
      shell.exec(guestCommand, deadline, () => this.#describe(), options),
      `running ${JSON.stringify(command)}`,
    );
    if (inGuestLimit && result.exitCode === EXIT_WAIT_TIMEOUT) {
      throw new TimeoutError(
        `${what}: timed out after ${formatMs(options.timeout ?? 0)} (killed in the guest)`,
        {
          machine: this.name,
          details: [
            ...(result.stdout.length > 0
              ? ["stdout so far:", ...tail(result.stdout.toString())]
              : []),
            ...(result.stderr.length > 0
              ? ["stderr so far:", ...tail(result.stderr.toString())]
              : []),
            ...consoleTail(this.consoleLines),
          ],
        },
      );
    }
    return result;
  }

  async #until(
    command: string,
    untilSuccess: boolean,
    what: string,
    options: WaitOptions,
  ): Promise<string> {
    const deadline = new Deadline(`${this.name}: ${what}`, options, WAIT_TIMEOUT_MS);
    const result = await this.#execute(
      untilScript(command, untilSuccess, deadline.remainingMs),
      { timeout: deadline.remainingMs, ...(options.signal ? { signal: options.signal } : {}) },
      true,
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
        ...consoleTail(this.consoleLines),
      ],
    });
  }

  /** Sends a command that ends the shell (poweroff, reboot) without waiting for its reply. */
  async #fireAndForget(command: string, deadline: Deadline): Promise<void> {
    const shell = await this.#connect(deadline);
    this.#isShellUp = false;
    await shell.sendFinal(command);
  }

  #shellGone(reason: string): void {
    this.#isShellUp = false;
    void this.#shell?.then(
      (shell) => shell.invalidate(reason),
      () => undefined,
    );
  }

  #requireVm(operation: string, capability?: Capability): RunningVm {
    const vm = this.#vm;
    if (!vm) {
      throw new CorralError(
        ErrorCodes.MACHINE_NOT_RUNNING,
        `${this.name}: ${operation}: the machine is not started`,
        {
          machine: this.name,
        },
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

  #unitNotFound(unit: string): CorralError {
    return new CorralError(ErrorCodes.UNIT_NOT_FOUND, `${this.name}: unit ${unit} does not exist`, {
      machine: this.name,
    });
  }

  #describe(): string[] {
    return consoleTail(this.consoleLines);
  }

  async #whileAlive<T>(promise: Promise<T>, deadline: Deadline): Promise<T> {
    const vm = this.#vm;
    const { promise: outcome, resolve: done, reject } = Promise.withResolvers<T>();
    const onAbort = () => reject(deadline.error(this.#describe(), this.name));
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

  async #explained<T>(promise: Promise<T>, during: string): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      throw await this.#explain(error, during);
    }
  }

  /** Turns a channel failure caused by the VM ending into a MachineExitedError. */
  async #explain(error: unknown, during: string): Promise<unknown> {
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
}

function nameFromStartScript(path: string | undefined): string | undefined {
  const match = path ? /run-(.+)-vm$/.exec(path) : null;
  return match?.[1];
}

function textResult(raw: RawExecResult): ExecResult<string> {
  return { exitCode: raw.exitCode, stdout: raw.stdout.toString(), stderr: raw.stderr.toString() };
}

function splitOptions(args: CommandsAndOptions): { commands: string[]; options: WaitOptions } {
  const last = args.at(-1);
  if (typeof last === "object") return { commands: args.slice(0, -1) as string[], options: last };
  return { commands: args as string[], options: {} };
}

function tail(text: string, count = 20): string[] {
  return text
    .replace(/\n$/, "")
    .split("\n")
    .slice(-count)
    .map((line) => `  | ${line}`);
}
