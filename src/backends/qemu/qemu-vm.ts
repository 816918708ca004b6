// A QEMU VM started from a `run-<name>-vm` start script (Nix-built or corral-built), run as it
// is with corral's runtime arguments appended.

import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import type { Deadline } from "../../deadline.ts";
import { CorralError, consoleTail, ErrorCodes, MachineExitedError } from "../../errors.ts";
import { requireHostTools } from "../../host/requirements.ts";
import { type ExitInfo, SupervisedProcess } from "../../host/supervised-process.ts";
import type { Capability, RunningVm, VmStartOptions } from "../backend.ts";
import { ConsoleLog } from "../console-log.ts";
import { runtimeArgs } from "./runtime-args.ts";

const STDERR_LINES_KEPT = 50;

export class QemuVm implements RunningVm {
  readonly backend = "qemu";
  readonly capabilities: ReadonlySet<Capability> = new Set();
  readonly console = new ConsoleLog();
  readonly exited: Promise<ExitInfo>;
  readonly #name: string;
  readonly #process: SupervisedProcess;
  readonly #shellServer: Server;
  readonly #shellConnection: Promise<Socket>;
  #shellSocket: Socket | undefined;
  readonly #stderr: string[] = [];

  private constructor(name: string, process: SupervisedProcess, shellServer: Server) {
    this.#name = name;
    this.#process = process;
    this.#shellServer = shellServer;
    this.#shellConnection = new Promise((resolve) =>
      shellServer.once("connection", (socket: Socket) => {
        this.#shellSocket = socket;
        resolve(socket);
      }),
    );
    process.child.stdout?.on("data", (chunk: Buffer) => this.console.write(chunk));
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
      shellServer.close();
      return info;
    });
  }

  /** Throws HostToolMissingError, with the apt-get fix, unless QEMU is installed. */
  static requireHostTools(): void {
    requireHostTools(["qemu-system-x86_64", "qemu-img"], "starting a QEMU VM");
  }

  /** Starts `startScript` with the runtime arguments; the guest is booting when this returns. */
  static async start(startScript: string, options: VmStartOptions): Promise<QemuVm> {
    const shellSocket = join(options.stateDir, "shell.sock");
    const server = createServer();
    server.listen(shellSocket);
    await once(server, "listening");
    try {
      const args = runtimeArgs({
        accelerator: options.accelerator,
        shellSocket,
        allowReboot: options.allowReboot ?? false,
      });
      const child = await SupervisedProcess.spawn(startScript, args, {
        cwd: options.stateDir,
        env: { ...process.env, ...options.env, TMPDIR: options.stateDir, USE_TMPDIR: "1" },
        stdio: ["pipe", "pipe", "pipe"],
      });
      return new QemuVm(options.name, child, server);
    } catch (error) {
      server.close();
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

  vmmStderr(): string[] {
    return [...this.#stderr];
  }

  async shellStream(deadline: Deadline): Promise<Duplex> {
    const { promise, resolve, reject } = Promise.withResolvers<Duplex>();
    const onAbort = () => reject(deadline.error(consoleTail(this.console.lines), this.#name));
    if (deadline.signal.aborted) onAbort();
    deadline.signal.addEventListener("abort", onAbort, { once: true });
    void this.exited.then((info) => reject(this.exitError("waiting for the backdoor shell", info)));
    void this.#shellConnection.then(resolve);
    try {
      return await promise;
    } finally {
      deadline.signal.removeEventListener("abort", onAbort);
    }
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
    this.#shellServer.close();
    this.#shellSocket?.destroy();
  }
}
