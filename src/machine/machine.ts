// Machine: one VM and the OS inside it, whatever the backend. The verbs of the NixOS test driver
// in camelCase. Waits poll inside the guest (one round trip) or follow events; none polls from
// the host. The running side lives in VmSession; verb groups live in *-verbs.ts.

import { resolve } from "node:path";
import type { HostForwardTarget, VmmEvent } from "../backends/backend.ts";
import { requireTimeout, type WaitOptions } from "../deadline.ts";
import { CorralError, describeValue, ErrorCodes, GuestCommandError } from "../errors.ts";
import type { ExecResult as RawExecResult } from "../guest/backdoor-shell.ts";
import type { QgaClient } from "../guest/qga-client.ts";
import { shellQuote } from "../guest/shell-quote.ts";
import type { AcceleratorVerdict } from "../host/accelerator.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import { type CopyOptions, type CopyResult, copyFromHost, copyFromVm } from "./file-verbs.ts";
import {
  openPortCommand,
  openUnixSocketCommand,
  systemctlCommand,
  ttyTextCommand,
} from "./guest-scripts.ts";
import type { MachineState } from "./lifecycle.ts";
import type {
  ExecResult,
  ExecuteOptions,
  ForwardPortOptions,
  MachineOptions,
  MachineSize,
  PortOptions,
  PowerDownOptions,
  ResizeOptions,
  SnapshotOptions,
  UserOptions,
} from "./machine-options.ts";
import { optionsOfSnapshot } from "./machine-plan.ts";
import type { PowerDownResult } from "./power-down.ts";
import { resizeMachine } from "./resize.ts";
import { getScreenText, getScreenTextVariants, waitForText } from "./screen-text.ts";
import {
  type ConsoleCursor,
  sendChars,
  sendKey,
  waitForConsoleText,
  waitUntilTtyMatches,
} from "./screen-verbs.ts";
import { readManifest } from "./snapshot-manifest.ts";
import { type SpawnedCommand, type SpawnOptions, type SpawnResult, spawnCommand } from "./spawn.ts";
import { getUnitInfo, waitForUnit } from "./systemd-verbs.ts";
import { validateMachineOptions } from "./validate-options.ts";
import { isDiskBoot } from "./validate-profile.ts";
import { MONITOR_TIMEOUT_MS, SHELL_TIMEOUT_MS, VmSession } from "./vm-session.ts";

export type { CopyOptions, CopyResult } from "./file-verbs.ts";
export type { TapAttachment, VlanAttachment } from "./machine-options.ts";
export type {
  ExecResult,
  ExecuteOptions,
  ForwardPortOptions,
  MachineOptions,
  MachineSize,
  PortOptions,
  PowerDownOptions,
  PowerDownResult,
  ResizeOptions,
  SnapshotOptions,
  SpawnedCommand,
  SpawnOptions,
  SpawnResult,
  UserOptions,
};

type CommandsAndOptions = string[] | [...string[], WaitOptions];
/** waitForQmpEvent's default limit: NixOS's 10 minutes. */
const QMP_EVENT_TIMEOUT_MS = 600_000;

/** The session Machine.attach hands to the constructor. */
let adopting: VmSession | undefined;
const MAX_PORT = 65_535;
const POWER_DOWN_GRACE_MS = 60_000;

/**
 * One virtual machine. Dispose it (`await using`) to stop the VM and remove its state: until it is
 * disposed or its VM ends, its VMM process and sockets keep the Node.js process alive.
 */
export class Machine implements AsyncDisposable {
  readonly name: string;
  readonly #session: VmSession;
  readonly #consoleCursor: ConsoleCursor = { next: 0 };

  /**
   * A machine, not started yet. Throws CORRAL_INVALID_ARGUMENT at once when an option is wrong
   * (unknown, of the wrong type or out of range), naming it.
   */
  constructor(options: MachineOptions = {}) {
    const session = adopting;
    adopting = undefined;
    if (session) {
      this.name = session.name;
      this.#session = session;
      return;
    }
    validateMachineOptions(options);
    this.name =
      options.name ??
      nameFromStartScript(options.startScript) ??
      (isDiskBoot(options) ? "vm" : (options.image ?? DEFAULT_RECIPE));
    this.#session = new VmSession(this.name, options);
  }

  /** The accelerator in use and why; undefined before start(). */
  get accelerator(): AcceleratorVerdict | undefined {
    return this.#session.accelerator;
  }

  /** The VM's state folder; undefined before start(). */
  get stateDir(): string | undefined {
    return this.#session.stateDir;
  }

  /**
   * The root disk overlay the VM boots from, when it is not the image's default one in its state
   * folder: a clone's own disk, or the overlay a snapshot moved it to. Give it as `rootDisk` to
   * a Machine that starts this VM again in another process.
   */
  get rootDisk(): string | undefined {
    return this.#session.rootDisk;
  }

  /** Every serial console line so far. */
  get consoleLines(): readonly string[] {
    return this.#session.consoleLines;
  }

  /** Calls `listener` with each serial console line from now on; returns the unsubscribe function. */
  onConsoleLine(listener: (line: string) => void): () => void {
    return this.#session.onConsoleLine(listener);
  }

  /**
   * The latest raw serial console bytes, at most `maxBytes` (default and most: 256 KiB), escape
   * sequences and the line being written included: what a terminal replays. For a persistent VM
   * attached to, they start with its console.log, so they reach back to its boot.
   */
  consoleBytes(maxBytes?: number): Buffer {
    return this.#session.consoleBytes(maxBytes);
  }

  /** Calls `listener` with each raw serial console chunk from now on; returns the unsubscribe function. */
  onConsoleData(listener: (chunk: Buffer) => void): () => void {
    return this.#session.onConsoleData(listener);
  }

  /** True once the VM runs and its backdoor shell has answered. */
  isUp(): boolean {
    return this.#session.isShellUp;
  }

  /** Where the machine is in its lifecycle: created, starting, running, paused, stopping, stopped or exited. */
  get state(): MachineState {
    return this.#session.lifecycle.state;
  }

  /** Calls `listener` with each new state from now on; returns the unsubscribe function. */
  onStateChange(listener: (state: MachineState) => void): () => void {
    return this.#session.lifecycle.onChange(listener);
  }

  // --- lifecycle ---------------------------------------------------------------------------

  /**
   * Starts the VM; the guest is still booting when this returns. Idempotent while it runs; once it
   * has ended (shutdown, crash, stop) it boots again from its disk, with what the guest had
   * written (and synced, for a crash), its console log running on.
   */
  async start(): Promise<void> {
    await this.#session.launch();
  }

  /**
   * The QEMU guest agent (qemu-ga) of a machine started with `guestAgent: true`: a QgaClient
   * whose agent has answered a guest-ping. Starts the VM if needed and waits (default 300 s)
   * until the agent answers. Each call returns the same client; once the VM has started again,
   * its next call reaches the new VM's agent. Throws CORRAL_UNSUPPORTED when the machine has no
   * agent port, the deadline's TimeoutError when no agent answers in the guest.
   */
  async guestAgent(options: WaitOptions = {}): Promise<QgaClient> {
    if (!this.#session.options.guestAgent) {
      throw new CorralError(
        ErrorCodes.UNSUPPORTED,
        `${this.name}: guestAgent(): the machine has no guest agent port; create it with \`guestAgent: true\``,
        { machine: this.name },
      );
    }
    const deadline = this.#session.deadline("guestAgent", options, SHELL_TIMEOUT_MS);
    await this.#session.launch();
    return this.#session.agent.connected(deadline);
  }

  /** Starts the VM if needed and waits until the guest's backdoor shell answers. */
  async waitForShell(options: WaitOptions = {}): Promise<void> {
    await this.#session.connect(this.#session.deadline("waitForShell", options, SHELL_TIMEOUT_MS));
  }

  /** Powers the guest off (`poweroff`) and waits for the VM to end; start() boots it again. */
  async shutdown(options: WaitOptions = {}): Promise<void> {
    await this.#session.shutdown(this.#session.deadline("shutdown", options, SHELL_TIMEOUT_MS));
  }

  /** Ends the VM at once, as a power cut would; start() boots it again. */
  async crash(): Promise<void> {
    await this.#session.stop(true);
  }

  /**
   * Ends the VM (a persistent one too) the way its VMM ends cleanly, without asking the guest; the
   * disk stays, and start() boots it again. Disposing a persistent machine only detaches.
   */
  async stop(): Promise<void> {
    await this.#session.stop(false);
  }

  /**
   * Presses the VM's ACPI power button, as a host's power button would, and waits until the VM
   * has ended: the guest shuts down its own way (systemd-logind on corral's images, Windows'
   * power button action). A paused VM is resumed first, so that its guest sees the button. A VM
   * still running after `graceMs` (default 60 s, at most the `timeout`) is forced off as crash()
   * does; the result says which happened. Does nothing when the VM is not running. `timeout`
   * defaults to `graceMs` + 30 s. start() boots the machine again.
   */
  async powerDown(options: PowerDownOptions = {}): Promise<PowerDownResult> {
    const graceMs = requireTimeout(
      options.graceMs ?? POWER_DOWN_GRACE_MS,
      `${this.name}: powerDown graceMs`,
    );
    const deadline = this.#session.deadline("powerDown", options, graceMs + MONITOR_TIMEOUT_MS);
    return this.#session.powerDown(deadline, graceMs);
  }

  /** Pauses the guest's CPUs (and so its clock); guest verbs are refused until resume(). */
  pause(options: WaitOptions = {}): Promise<void> {
    return this.#session.pause(options);
  }

  /** Resumes a paused machine. */
  resume(options: WaitOptions = {}): Promise<void> {
    return this.#session.resume(options);
  }

  /**
   * Reboots the guest (`reboot`) and waits until its shell answers again. The guest shuts down
   * cleanly and the VM starts again from the same disk (a new VMM process: warm resets are not
   * reliable with several vCPUs under TCG). Works whether or not `allowReboot` was set.
   */
  async reboot(options: WaitOptions = {}): Promise<void> {
    await this.#session.reboot(this.#session.deadline("reboot", options, SHELL_TIMEOUT_MS));
  }

  /**
   * Grows the running machine: hot-adds vCPUs and memory (up to the `maxCpus` and `maxMemoryMiB`
   * it was started with; memory in whole steps of 128 MiB) and grows its root disk to `diskGiB`
   * (the filesystem on it is the guest's to grow). Returns once the guest sees it all (`nproc`,
   * MemTotal, the disk's size), with the new size. A later start keeps the new size, in this
   * process or, for a persistent machine, in one that attaches to it. A snapshot needs a stop
   * and start first. Throws CORRAL_CONFLICT when asked to shrink or go past a limit (naming it
   * and the current value) or when the machine is not running, CORRAL_INVALID_ARGUMENT for a bad
   * number, CORRAL_UNSUPPORTED when its backend cannot resize it, TimeoutError saying what the
   * guest shows when it does not see the new size in time (default 120 s).
   */
  resize(target: ResizeOptions, options: WaitOptions = {}): Promise<MachineSize> {
    return resizeMachine(this.#session, target, options);
  }

  /**
   * The running machine's vCPUs, memory and root disk size, and the most it can grow to, as its
   * VMM reports them. Throws CORRAL_UNSUPPORTED when its backend cannot resize it.
   */
  getSize(options: WaitOptions = {}): Promise<MachineSize> {
    const resizing = this.#session.ability("getSize()", "resize");
    return resizing.size(this.#session.deadline("getSize", options, MONITOR_TIMEOUT_MS));
  }

  /** Waits until the VM has ended (the guest powered off or crashed). */
  async waitForShutdown(options: WaitOptions = {}): Promise<void> {
    const deadline = this.#session.deadline("waitForShutdown", options, SHELL_TIMEOUT_MS);
    await this.#session.whileExiting(deadline);
  }

  /**
   * The persistent machine whose state folder is `stateDir`, started by this or another corral
   * process (which may have exited since): reconnects to its VMM, its guest shell (waiting out a
   * command that was in flight) and its console. Every verb works on it; disposing it detaches,
   * stop() ends it. Throws CORRAL_NOT_FOUND when the folder holds no persistent VM, and
   * CORRAL_MACHINE_EXITED (removing its stale sockets and record, not its disk) when its VMM has
   * died.
   */
  static async attach(stateDir: string, options: { name?: string } = {}): Promise<Machine> {
    adopting = await VmSession.attach(options.name, stateDir);
    return new Machine();
  }

  /**
   * Saves the running machine into the folder `dir` (which must not exist): device and memory
   * state, its disk frozen as a read-only qcow2 layer, and a manifest with checksums. The VM is
   * paused meanwhile and resumed after, or stopped with `{ stop: true }`. Start clones with
   * `Machine.fromSnapshot(dir)`.
   */
  snapshot(dir: string, options: SnapshotOptions = {}): Promise<void> {
    return this.#session.snapshot(dir, options);
  }

  /**
   * A machine that starts from the snapshot at `dir` instead of booting, with its own writable
   * overlay; the snapshot is never modified, so many clones can run from it at once. It gets
   * the snapshot's machine config unless `options` say otherwise, and a snapshot from another
   * image, backend version or config is refused.
   */
  static async fromSnapshot(dir: string, options: MachineOptions = {}): Promise<Machine> {
    const manifest = await readManifest(resolve(dir));
    return new Machine({ ...optionsOfSnapshot(manifest), ...options, snapshot: dir });
  }

  /**
   * Stops the VM if it runs and removes its state folder (unless `keepState`); a persistent
   * machine is only detached from, and runs on.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#session.dispose();
  }

  // --- commands ----------------------------------------------------------------------------

  /**
   * Runs `command` with bash in the guest and returns its exit code, stdout and stderr (text, or
   * Buffers with `encoding: "buffer"`). Starts the VM and waits for the shell first. A `timeout`
   * (ms, any size, Infinity for none) counts from the call and is enforced in the guest too: the
   * command's process group gets SIGTERM, then SIGKILL 2 s later, and the call throws
   * TimeoutError. Each of stdout and stderr keeps at most `maxBuffer` bytes (64 MiB): more throws
   * CORRAL_OUTPUT_TOO_LARGE once the command has ended. Throws MachineExitedError at once if the
   * VM ends meanwhile, CORRAL_GUEST_CHANNEL_BROKEN at once if the guest's shell dies, and
   * CORRAL_INVALID_ARGUMENT for a negative timeout. With `checkReturn: false` it only sends the
   * command and returns exit code -1 at once (see ExecuteOptions).
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
    if (options.timeout !== undefined) requireTimeout(options.timeout, `${this.name}: execute`);
    if (options.checkOutput === false || options.checkReturn === false) {
      await this.#session.fire(command, options);
      const empty = options.encoding === "buffer" ? Buffer.alloc(0) : "";
      return { exitCode: options.checkOutput === false ? -2 : -1, stdout: empty, stderr: empty } as
        | ExecResult<string>
        | ExecResult<Buffer>;
    }
    const raw = await this.#session.execute(command, options);
    return options.encoding === "buffer" ? raw : textResult(raw);
  }

  /**
   * Starts `command` with bash in the guest and resolves once it runs, with a handle to write to
   * its stdin, signal it, resize its terminal (`tty`) or kill it; its output comes to
   * `onStdout`/`onStderr` as it arrives (none is kept) and `exited` settles with its exit code.
   * At the `timeout` (none by default) or the caller's abort it is killed (`isTimedOut` for a
   * timeout); before it runs, either gives up the wait with TimeoutError or AbortedError. The
   * backdoor shell runs one command at a time: other calls wait until it has ended. Stdin travels
   * over the `corral.xfer` port, a byte per guest system call: for typing and small inputs.
   * Throws CORRAL_INVALID_ARGUMENT for a bad terminal size, and as execute() does.
   */
  spawn(command: string, options: SpawnOptions = {}): Promise<SpawnedCommand> {
    return spawnCommand(this.#session, command, options);
  }

  /** Runs each command; throws GuestCommandError at the first that fails. Returns their stdout. */
  succeed(...args: CommandsAndOptions): Promise<string> {
    return this.#runEach(args, true);
  }

  /** Runs each command; throws GuestCommandError at the first that succeeds. Returns their stdout. */
  fail(...args: CommandsAndOptions): Promise<string> {
    return this.#runEach(args, false);
  }

  /** Repeats `command` in the guest until it succeeds; returns the stdout of that run. */
  waitUntilSucceeds(command: string, options: WaitOptions = {}): Promise<string> {
    const what = `waitUntilSucceeds(${JSON.stringify(command)})`;
    return this.#session.until(command, true, what, options);
  }

  /** Repeats `command` in the guest until it fails; returns the stdout of that run. */
  waitUntilFails(command: string, options: WaitOptions = {}): Promise<string> {
    const what = `waitUntilFails(${JSON.stringify(command)})`;
    return this.#session.until(command, false, what, options);
  }

  /** Sleeps `seconds` in the guest's time (so a paused or slow guest sleeps as long). */
  async sleep(seconds: number): Promise<void> {
    await this.succeed(`sleep ${Number(seconds)}`);
  }

  /** Waits until `path` exists in the guest. */
  async waitForFile(path: string, options: WaitOptions = {}): Promise<void> {
    const what = `waitForFile(${JSON.stringify(path)})`;
    await this.#session.until(`test -e ${shellQuote(path)}`, true, what, options);
  }

  /** Waits until something listens on TCP `port` in the guest. */
  async waitForOpenPort(port: number, options: PortOptions = {}): Promise<void> {
    const address = options.address ?? "localhost";
    const what = `waitForOpenPort(${address}:${port})`;
    await this.#session.until(openPortCommand(port, address), true, what, options);
  }

  /** Waits until nothing listens on TCP `port` in the guest any more. */
  async waitForClosedPort(port: number, options: PortOptions = {}): Promise<void> {
    const address = options.address ?? "localhost";
    const what = `waitForClosedPort(${address}:${port})`;
    await this.#session.until(openPortCommand(port, address), false, what, options);
  }

  /** Waits until a unix socket at `path` accepts connections (or exists, for datagram sockets). */
  async waitForOpenUnixSocket(
    path: string,
    options: WaitOptions & { isDatagram?: boolean } = {},
  ): Promise<void> {
    const command = openUnixSocketCommand(path, options.isDatagram ?? false);
    const what = `waitForOpenUnixSocket(${JSON.stringify(path)})`;
    await this.#session.until(command, true, what, options);
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
  getUnitInfo(unit: string, options: UserOptions = {}): Promise<Record<string, string>> {
    return getUnitInfo(this.#session, unit, options);
  }

  /** One property of `unit`, e.g. `ActiveState`. */
  async getUnitProperty(
    unit: string,
    property: string,
    options: UserOptions = {},
  ): Promise<string> {
    const value = (await this.getUnitInfo(unit, options))[property];
    if (value === undefined) {
      throw new CorralError(
        ErrorCodes.NOT_FOUND,
        `${this.name}: unit ${unit} has no property ${property}`,
        { machine: this.name },
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
        { machine: this.name },
      );
    }
  }

  /**
   * Waits until `unit` is active. Fails at once when it does not exist, has failed, or is
   * inactive with no job queued that could start it.
   */
  waitForUnit(unit: string, options: UserOptions = {}): Promise<void> {
    return waitForUnit(this.#session, unit, options);
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
  waitForConsoleText(pattern: RegExp | string, options: WaitOptions = {}): Promise<string> {
    const regex = typeof pattern === "string" ? new RegExp(pattern) : pattern;
    return waitForConsoleText(this.#session, this.#consoleCursor, regex, options);
  }

  /** Types `text` on the serial console (the guest's ttyS0 input). */
  sendConsole(text: string): void {
    this.#session.requireVm("sendConsole").sendConsole(text);
  }

  /** The text on virtual terminal `tty` (1 = tty1), one screen line per line. */
  getTtyText(tty = 1): Promise<string> {
    return this.succeed(ttyTextCommand(tty));
  }

  /** Waits until the text on virtual terminal `tty` matches `pattern`; returns that text. */
  waitUntilTtyMatches(
    tty: number,
    pattern: RegExp | string,
    options: WaitOptions = {},
  ): Promise<string> {
    const regex = typeof pattern === "string" ? new RegExp(pattern, "m") : pattern;
    return waitUntilTtyMatches(this.#session, tty, regex, options);
  }

  /**
   * The text on the screen, read by OCR (tesseract) from a screenshot. Default timeout 30 000 ms.
   * Throws CORRAL_HOST_TOOL_MISSING when tesseract is not installed (`apt-get install
   * tesseract-ocr`), CORRAL_UNSUPPORTED for a backend without screenshots.
   */
  getScreenText(options: WaitOptions = {}): Promise<string> {
    return getScreenText(this.#session, options);
  }

  /**
   * Three OCR readings of one screenshot (as it is, and enlarged black-and-white, as is and
   * negated): a word one misses another often finds. Errors as getScreenText.
   */
  getScreenTextVariants(options: WaitOptions = {}): Promise<string[]> {
    return getScreenTextVariants(this.#session, options);
  }

  /**
   * Reads the screen by OCR (all variants) once a second until a text matches `pattern`; returns
   * that text. Default timeout 900 000 ms; the TimeoutError shows the last texts read. Errors
   * otherwise as getScreenText.
   */
  waitForText(pattern: RegExp | string, options: WaitOptions = {}): Promise<string> {
    const regex = new RegExp(
      pattern,
      typeof pattern === "string" ? "" : pattern.flags.replace(/[gy]/g, ""),
    );
    return waitForText(this.#session, regex, options);
  }

  /** Presses a key combination, NixOS style: "ctrl-alt-delete", "shift-a", "ret". */
  sendKey(key: string, options: WaitOptions = {}): Promise<void> {
    return sendKey(this.#session, key, options);
  }

  /** Types `text` on the keyboard, one key press per character (US layout). */
  sendChars(text: string, options: WaitOptions & { delayMs?: number } = {}): Promise<void> {
    return sendChars(this.#session, text, options);
  }

  /** Runs a monitor command line of the VMM (HMP for QEMU) and returns its output. */
  sendMonitorCommand(commandLine: string, options: WaitOptions = {}): Promise<string> {
    const monitor = this.#session.ability("sendMonitorCommand", "monitor");
    const what = `sendMonitorCommand(${commandLine})`;
    return monitor.monitorCommand(
      this.#session.deadline(what, options, MONITOR_TIMEOUT_MS),
      commandLine,
    );
  }

  /**
   * Waits for the first VMM event (QMP for QEMU: `{ event: "SHUTDOWN", data, timestamp }`) from
   * now on for which `filter` returns true, and returns it; start the wait before what causes
   * the event. Default timeout 600 000 ms, as NixOS's. Throws CORRAL_UNSUPPORTED for a backend
   * without a monitor, a TimeoutError, or what `filter` throws.
   */
  async waitForQmpEvent(
    filter: (event: VmmEvent) => boolean,
    options: WaitOptions = {},
  ): Promise<VmmEvent> {
    const monitor = this.#session.ability("waitForQmpEvent", "monitor");
    const deadline = this.#session.deadline("waitForQmpEvent", options, QMP_EVENT_TIMEOUT_MS);
    const found = Promise.withResolvers<VmmEvent>();
    const unsubscribe = await monitor.onEvent(deadline, (event) => {
      try {
        if (filter(event)) found.resolve(event);
      } catch (error) {
        found.reject(error);
      }
    });
    try {
      return await deadline.race(found.promise);
    } finally {
      unsubscribe();
    }
  }

  /** Writes the screen as a PNG file; `.png` is added when `path` has no extension. Returns the path. */
  async screenshot(path: string, options: WaitOptions = {}): Promise<string> {
    const screen = this.#session.ability("screenshot", "screenshot");
    const file = resolve(/\.[^/]+$/.test(path) ? path : `${path}.png`);
    await screen.screenshot(
      this.#session.deadline(`screenshot(${file})`, options, MONITOR_TIMEOUT_MS),
      file,
    );
    return file;
  }

  // --- network -----------------------------------------------------------------------------

  /**
   * Makes `127.0.0.1:hostPort` on the host (or `options.hostAddress`, `0.0.0.0` for every
   * address) reach `guestPort` in the guest over `options.protocol` (default tcp), through the
   * user-mode NIC. With `hostPort` 0 the host picks a free port. Returns the host port. Throws
   * CORRAL_CONFLICT when QEMU cannot listen there (saying so when 127.0.0.1:hostPort is in use),
   * CORRAL_INVALID_ARGUMENT for a port out of range.
   */
  async forwardPort(
    hostPort: number,
    guestPort: number,
    options: ForwardPortOptions & WaitOptions = {},
  ): Promise<number> {
    const what = `forwardPort(${hostPort}, ${guestPort})`;
    this.#requirePort(what, "hostPort", hostPort, 0);
    this.#requirePort(what, "guestPort", guestPort, 1);
    const forwarding = this.#session.ability("forwardPort", "forward-port");
    const deadline = this.#session.deadline(what, options, MONITOR_TIMEOUT_MS);
    return forwarding.forwardPort(deadline, { ...forwardTarget(hostPort, options), guestPort });
  }

  /**
   * Stops forwarding `hostPort` (of `options.protocol` on `options.hostAddress`, as given to
   * forwardPort). Returns whether there was such a forward.
   */
  async unforwardPort(
    hostPort: number,
    options: ForwardPortOptions & WaitOptions = {},
  ): Promise<boolean> {
    const what = `unforwardPort(${hostPort})`;
    this.#requirePort(what, "hostPort", hostPort, 1);
    const forwarding = this.#session.ability("unforwardPort", "forward-port");
    const deadline = this.#session.deadline(what, options, MONITOR_TIMEOUT_MS);
    return forwarding.unforwardPort(deadline, forwardTarget(hostPort, options));
  }

  #requirePort(what: string, which: string, port: number, min: number): void {
    if (Number.isInteger(port) && port >= min && port <= MAX_PORT) return;
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${this.name}: ${what}: ${which} is ${describeValue(port)}; expected a whole number from ${min} to ${MAX_PORT}`,
      { machine: this.name },
    );
  }

  /** Takes every network link of the machine down, as if its cables were pulled. */
  async block(options: WaitOptions = {}): Promise<void> {
    const links = this.#session.ability("block", "block-links");
    await links.setLinksUp(this.#session.deadline("block", options, MONITOR_TIMEOUT_MS), false);
  }

  /** Brings the links taken down by block() up again. */
  async unblock(options: WaitOptions = {}): Promise<void> {
    const links = this.#session.ability("unblock", "block-links");
    await links.setLinksUp(this.#session.deadline("unblock", options, MONITOR_TIMEOUT_MS), true);
  }

  // --- files -------------------------------------------------------------------------------

  /**
   * Copies the host file or folder `source` to `target` in the guest: parent folders are
   * created, a folder is copied as a tree (its files, folders and symlinks) and merged into an
   * existing one. Anything else (a socket, a device) is refused at once with
   * CORRAL_INVALID_ARGUMENT; a missing source throws CORRAL_NOT_FOUND. With `sha256`, a file's
   * bytes are hashed in the guest as they arrive and the result carries that sum.
   */
  copyFromHost(source: string, target: string, options: CopyOptions = {}): Promise<CopyResult> {
    return copyFromHost(this.#session, source, target, options);
  }

  /** Copies the guest file or folder `source` to `target` on the host, as copyFromHost does. */
  copyFromVm(source: string, target: string, options: CopyOptions = {}): Promise<CopyResult> {
    return copyFromVm(this.#session, source, target, options);
  }

  async #runEach(args: CommandsAndOptions, expectSuccess: boolean): Promise<string> {
    const last = args.at(-1);
    const options = typeof last === "object" ? last : {};
    const commands = (typeof last === "object" ? args.slice(0, -1) : args) as string[];
    let output = "";
    for (const command of commands) {
      const result = await this.execute(command, options);
      if ((result.exitCode === 0) !== expectSuccess) {
        const message = expectSuccess
          ? `command failed with exit code ${result.exitCode}: ${command}`
          : `command succeeded but was expected to fail: ${command}`;
        throw new GuestCommandError(
          `${this.name}: ${message}`,
          { command, ...result },
          { machine: this.name },
        );
      }
      output += result.stdout;
    }
    return output;
  }
}

function nameFromStartScript(path: string | undefined): string | undefined {
  const match = path ? /run-(.+)-vm$/.exec(path) : null;
  return match?.[1];
}

function textResult(raw: RawExecResult & Partial<ExecResult<Buffer>>): ExecResult<string> {
  const { isStdoutTruncated, isStderrTruncated } = raw;
  return {
    exitCode: raw.exitCode,
    stdout: raw.stdout.toString(),
    stderr: raw.stderr.toString(),
    ...(isStdoutTruncated !== undefined ? { isStdoutTruncated } : {}),
    ...(isStderrTruncated !== undefined ? { isStderrTruncated } : {}),
  };
}

/** The host side of a forward, from forwardPort's options. */
function forwardTarget(hostPort: number, options: ForwardPortOptions): HostForwardTarget {
  return {
    hostPort,
    ...(options.protocol !== undefined && { protocol: options.protocol }),
    ...(options.hostAddress !== undefined && { hostAddress: options.hostAddress }),
  };
}
