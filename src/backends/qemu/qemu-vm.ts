// A QEMU VM started from a `run-<name>-vm` start script (Nix-built or corral-built), run as it
// is with corral's runtime arguments appended. Talks to QEMU over QMP.

import { open } from "node:fs/promises";
import type { Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../../deadline.ts";
import { CorralError, consoleTail, ErrorCodes, MachineExitedError } from "../../errors.ts";
import type { ShellStreams } from "../../guest/backdoor-shell.ts";
import { isLocalPortInUse } from "../../host/local-port.ts";
import { requireHostTools } from "../../host/requirements.ts";
import { type ExitInfo, SupervisedProcess } from "../../host/supervised-process.ts";
import { UnixListener } from "../../host/unix-listener.ts";
import type { Capability, RunningVm, VmStartOptions } from "../backend.ts";
import { ConsoleLog } from "../console-log.ts";
import { type SavedState, saveState } from "./qemu-state.ts";
import { QmpClient } from "./qmp-client.ts";
import { type RuntimeSockets, runtimeArgs } from "./runtime-args.ts";

const STDERR_LINES_KEPT = 50;
/** The descriptor a restored VM's QEMU reads its saved state from: the first after stdio. */
const INCOMING_FD = 3;

type Listeners = Record<keyof RuntimeSockets, UnixListener>;

let launches = 0;

export class QemuVm implements RunningVm {
  readonly backend = "qemu";
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>([
    "screenshot",
    "keys",
    "block-links",
    "forward-port",
    "monitor",
    "reboot",
    "snapshot",
  ]);
  readonly console: ConsoleLog;
  readonly exited: Promise<ExitInfo>;
  readonly #name: string;
  readonly #process: SupervisedProcess;
  readonly #listeners: Listeners;
  readonly #stderr: string[] = [];
  readonly #qmp: Promise<QmpClient>;
  #qmpClient: QmpClient | undefined;
  /** The forwardPort calls in turn: a port 0 forward is found by comparing QEMU's list before and after. */
  #forwarding: Promise<unknown> = Promise.resolve();

  private constructor(
    name: string,
    process: SupervisedProcess,
    listeners: Listeners,
    console: ConsoleLog,
  ) {
    this.#name = name;
    this.console = console;
    this.#process = process;
    this.#listeners = listeners;
    process.child.stdout?.on("data", (chunk: Buffer) => this.console.write(chunk));
    process.child.stdin?.on("error", () => {});
    let partial = "";
    process.child.stderr?.on("data", (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      this.#stderr.push(...lines.filter(Boolean));
      this.#stderr.splice(0, Math.max(0, this.#stderr.length - STDERR_LINES_KEPT));
    });
    this.exited = process.exited.then((info) => {
      this.console.end();
      if (partial) this.#stderr.push(partial);
      for (const listener of Object.values(listeners)) listener.close();
      return info;
    });
    this.#qmp = listeners.qmp.accepted.then(async (socket) => {
      this.#qmpClient = await QmpClient.connect(socket);
      return this.#qmpClient;
    });
    this.#qmp.catch(() => undefined);
  }

  /** Throws HostToolMissingError, with the apt-get fix, unless QEMU is installed. */
  static requireHostTools(): void {
    requireHostTools(["qemu-system-x86_64", "qemu-img"], "starting a QEMU VM");
  }

  /** Starts `startScript` with the runtime arguments; the guest is booting when this returns. */
  static async start(startScript: string, options: VmStartOptions): Promise<QemuVm> {
    const names = ["qmp", "shell", "stdout", "stderr", "xfer"] as const;
    // Sockets of each start have their own names: the previous QEMU's may still be going away.
    const launch = ++launches;
    const listeners = {} as Listeners;
    try {
      for (const name of names)
        listeners[name] = await UnixListener.listen(
          join(options.stateDir, `${name}-${launch}.sock`),
        );
      const sockets = Object.fromEntries(
        names.map((name) => [name, listeners[name].path]),
      ) as unknown as RuntimeSockets;
      const args = runtimeArgs({
        name: options.name,
        accelerator: options.accelerator,
        sockets,
        allowReboot: options.allowReboot ?? false,
        cpus: options.cpus,
        memoryMiB: options.memoryMiB,
        nics: options.nics,
      });
      // A saved state is read by QEMU itself from an inherited descriptor: no pipe, no copy.
      const state = options.restoreState ? await open(options.restoreState, "r") : undefined;
      if (state) args.push("-incoming", `fd:${INCOMING_FD}`);
      const child = await SupervisedProcess.spawn(startScript, args, {
        cwd: options.stateDir,
        env: { ...process.env, ...options.env, TMPDIR: options.stateDir, USE_TMPDIR: "1" },
        stdio: ["pipe", "pipe", "pipe", ...(state ? [state.fd] : [])],
      }).finally(() => state?.close());
      return new QemuVm(options.name, child, listeners, options.console ?? new ConsoleLog());
    } catch (error) {
      for (const listener of Object.values(listeners)) listener.close();
      throw new CorralError(
        ErrorCodes.MACHINE_START_FAILED,
        `${options.name}: cannot run ${startScript}`,
        {
          cause: error,
          machine: options.name,
        },
      );
    }
  }

  get hasExited(): boolean {
    return this.#process.hasExited;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#process.exitInfo;
  }

  vmmStderr(): string[] {
    return [...this.#stderr];
  }

  async shellStreams(deadline: Deadline): Promise<ShellStreams> {
    const { shell, stdout, stderr } = this.#listeners;
    const [console, out, err] = await this.#whileRunning(
      Promise.all([shell.accepted, stdout.accepted, stderr.accepted]),
      deadline,
      "waiting for the backdoor shell",
    );
    return { console, stdout: out, stderr: err };
  }

  transferStream(deadline: Deadline): Promise<Socket> {
    return this.#whileRunning(
      this.#listeners.xfer.accepted,
      deadline,
      "connecting the transfer port",
    );
  }

  /** The QMP connection, once QEMU has connected and capabilities are negotiated. */
  qmp(deadline: Deadline): Promise<QmpClient> {
    return this.#whileRunning(this.#qmp, deadline, "connecting to QMP");
  }

  async command<T = unknown>(
    deadline: Deadline,
    name: string,
    args: Record<string, unknown> = {},
  ): Promise<T> {
    const qmp = await this.qmp(deadline);
    return this.#whileRunning(
      qmp.execute<T>(name, args, { signal: deadline.signal }),
      deadline,
      `running QMP ${name}`,
    );
  }

  sendConsole(text: string): void {
    this.#process.child.stdin?.write(text);
  }

  async monitorCommand(deadline: Deadline, commandLine: string): Promise<string> {
    return this.command<string>(deadline, "human-monitor-command", { "command-line": commandLine });
  }

  async screenshot(deadline: Deadline, path: string): Promise<void> {
    await this.command(deadline, "screendump", { filename: path, format: "png" });
  }

  async sendKeys(deadline: Deadline, qcodes: readonly string[], holdMs = 100): Promise<void> {
    const keys = qcodes.map((code) => ({ type: "qcode", data: code }));
    await this.command(deadline, "send-key", { keys, "hold-time": holdMs });
  }

  async setLinksUp(deadline: Deadline, up: boolean): Promise<string[]> {
    const nics = await this.command<{ name: string }[]>(deadline, "query-rx-filter");
    for (const nic of nics) await this.command(deadline, "set_link", { name: nic.name, up });
    return nics.map((nic) => nic.name);
  }

  forwardPort(deadline: Deadline, hostPort: number, guestPort: number): Promise<number> {
    const forwarded = this.#forwarding.then(() => this.#forward(deadline, hostPort, guestPort));
    this.#forwarding = forwarded.catch(() => undefined);
    return forwarded;
  }

  async #forward(deadline: Deadline, hostPort: number, guestPort: number): Promise<number> {
    // QEMU 7.2 binds port 0 to a free port and shows it only in `info usernet`.
    const before = hostPort === 0 ? await this.#forwardedPorts(deadline) : [];
    const output = (
      await this.monitorCommand(
        deadline,
        `hostfwd_add user.0 tcp:127.0.0.1:${hostPort}-:${guestPort}`,
      )
    ).trim();
    if (output !== "") {
      // QEMU says only "Could not set up host forwarding rule", whatever the reason.
      const isInUse = hostPort !== 0 && (await isLocalPortInUse(hostPort));
      throw new CorralError(
        ErrorCodes.CONFLICT,
        isInUse
          ? `${deadline.what}: 127.0.0.1:${hostPort} is already in use`
          : `${deadline.what}: QEMU refused: ${output}`,
        { machine: this.#name },
      );
    }
    if (hostPort !== 0) return hostPort;
    const added = (await this.#forwardedPorts(deadline)).filter((port) => !before.includes(port));
    if (added.length !== 1 || added[0] === undefined) {
      throw new CorralError(
        ErrorCodes.QMP_ERROR,
        `${deadline.what}: cannot tell which host port QEMU bound (new forwards: ${added.join(", ") || "none"})`,
        { machine: this.#name },
      );
    }
    return added[0];
  }

  /** The host ports QEMU forwards to the guest over TCP. */
  async #forwardedPorts(deadline: Deadline): Promise<number[]> {
    const table = await this.monitorCommand(deadline, "info usernet");
    return [...table.matchAll(/TCP\[HOST_FORWARD\]\s+\d+\s+\S+\s+(\d+)/g)].map((match) =>
      Number(match[1]),
    );
  }

  /** Whether a guest-initiated reboot resets the VM (true) or ends QEMU (false). */
  async setRebootAllowed(deadline: Deadline, allowed: boolean): Promise<void> {
    await this.command(deadline, "set-action", { reboot: allowed ? "reset" : "shutdown" });
  }

  saveState(deadline: Deadline, dir: string, nextOverlay: string): Promise<SavedState> {
    return saveState((d, name, args) => this.command(d, name, args), deadline, dir, nextOverlay);
  }

  async resume(deadline: Deadline): Promise<void> {
    // A restored VM is paused once its state has loaded (it was paused when saved).
    while (
      (await this.command<{ status: string }>(deadline, "query-status")).status === "inmigrate"
    ) {
      await sleep(5);
    }
    await this.command(deadline, "cont");
  }

  /** The error for an operation that was pending when QEMU exited, with QEMU's own words. */
  exitError(during: string, info: ExitInfo): MachineExitedError {
    const how = info.signal ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
    const stderr = this.#stderr.slice(-10);
    return new MachineExitedError(`${this.#name}: QEMU ${how} while ${during}`, {
      machine: this.#name,
      details: [
        ...(stderr.length > 0 ? ["QEMU said:", ...stderr.map((line) => `  | ${line}`)] : []),
        ...consoleTail(this.console.lines),
      ],
    });
  }

  async stop(options: { force?: boolean } = {}): Promise<ExitInfo> {
    if (options.force) this.#process.kill("SIGKILL");
    // QEMU treats SIGTERM as a request to quit cleanly.
    return this.#process.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    for (const listener of Object.values(this.#listeners)) listener.close();
  }

  /** Settles with `promise`, or fails at once when QEMU exits or the deadline passes. */
  async #whileRunning<T>(promise: Promise<T>, deadline: Deadline, during: string): Promise<T> {
    const { promise: outcome, resolve, reject } = Promise.withResolvers<T>();
    const onAbort = () => reject(deadline.error(consoleTail(this.console.lines), this.#name));
    if (deadline.signal.aborted) onAbort();
    deadline.signal.addEventListener("abort", onAbort, { once: true });
    void this.exited.then((info) => reject(this.exitError(during, info)));
    promise.then(resolve, reject);
    try {
      return await outcome;
    } finally {
      deadline.signal.removeEventListener("abort", onAbort);
    }
  }
}
