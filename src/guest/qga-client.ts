// A client of the QEMU guest agent (qemu-ga, on the virtio-serial port org.qemu.guest_agent.0):
// one request at a time, each within its caller's deadline; the stream is put in step with
// guest-sync-delimited when opened and after any request whose reply did not come, and opened
// again when it closed (the agent or QEMU restarted). Exec and files are in qga-exec.ts and
// qga-files.ts; the protocol in qga-protocol.ts.

import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import {
  execArguments,
  execResult,
  nextPollMs,
  type QgaExecOptions,
  type QgaExecRequest,
  type QgaExecResult,
  type QgaExecStatus,
} from "./qga-exec.ts";
import { type QgaFileAgent, readFileChunks, writeFile } from "./qga-files.ts";
import { type QgaConnection, QgaError, type QgaReply } from "./qga-protocol.ts";
import { isChannelBroken, type Pin, type QgaOpen, QgaSession } from "./qga-session.ts";
import {
  camelize,
  type QgaFilesystem,
  type QgaInfo,
  type QgaNetworkInterface,
  type QgaOsInfo,
  type QgaShutdownMode,
  type QgaUser,
} from "./qga-types.ts";

export type { QgaOpen } from "./qga-session.ts";

/** What the agent offers, from guest-info and a probe. */
export interface QgaCapabilities {
  /** The agent's version, e.g. `7.2.22`. */
  version: string;
  /** The commands it has and has enabled. */
  commands: ReadonlySet<string>;
  /** guest-exec takes `cwd`: probed (an argument the agent rejects by name), not assumed. */
  execCwd: boolean;
}

/** How long guest-shutdown waits for the agent to confirm it took the request, in ms. */
const SHUTDOWN_CONFIRM_MS = 5000;
/** No program has an empty name: guest-exec fails on it once it has checked its arguments. */
const PROBE_PATH = "";

export class QgaClient implements Disposable {
  readonly #session: QgaSession;
  #capabilities: { connection: QgaConnection; value: QgaCapabilities } | undefined;
  /** Handles whose close could not be sent: closed before the next transfer. */
  readonly #unclosedHandles = new Set<number>();
  /** Programs whose caller stopped waiting: their status is collected before the next exec. */
  readonly #unreapedPids = new Set<number>();

  private constructor(open: QgaOpen) {
    this.#session = new QgaSession(open);
  }

  /**
   * Opens the channel, puts it in step and pings the agent. Fails with the deadline's error when
   * no agent answers (none runs in the guest), CORRAL_GUEST_CHANNEL_BROKEN when the stream
   * cannot be opened or closes.
   */
  static async connect(open: QgaOpen, deadline: Deadline): Promise<QgaClient> {
    const client = new QgaClient(open);
    try {
      await client.ping(deadline);
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  /**
   * Runs any agent command and resolves with its `return` value as the agent sent it. Every
   * call fails with CORRAL_GUEST_AGENT_ERROR (a QgaError) when the agent answers with an error,
   * CORRAL_GUEST_CHANNEL_BROKEN when the stream closes or sends garbage, the deadline's error
   * when no reply comes in time; the next call puts the stream back in step (or reopens it).
   * Not for commands that answer nothing on success (guest-shutdown: use shutdown()).
   */
  execute(
    command: string,
    args: Record<string, unknown> | undefined,
    deadline: Deadline,
  ): Promise<unknown> {
    return this.#session.call(command, args, deadline);
  }

  /** guest-ping: one round trip to the agent. */
  async ping(deadline: Deadline): Promise<void> {
    await this.#session.call("guest-ping", undefined, deadline);
  }

  /** guest-info: the agent's version and commands. */
  async info(deadline: Deadline): Promise<QgaInfo> {
    return camelize(await this.#session.call("guest-info", undefined, deadline));
  }

  /** What this agent offers; asked once per connection (a new one may be another agent). */
  async capabilities(deadline: Deadline): Promise<QgaCapabilities> {
    const cached = this.#capabilities;
    if (cached && cached.connection === this.#session.connection) return cached.value;
    const info = await this.info(deadline);
    const connection = this.#session.connection;
    const commands = new Set(info.supportedCommands.filter((c) => c.enabled).map((c) => c.name));
    const execCwd =
      commands.has("guest-exec") &&
      (await this.#acceptsArgument("guest-exec", { path: PROBE_PATH, cwd: "/" }, "cwd", deadline));
    const value = { version: info.version, commands, execCwd };
    if (connection) this.#capabilities = { connection, value };
    return value;
  }

  /** guest-get-osinfo: the guest's OS and kernel. */
  async osInfo(deadline: Deadline): Promise<QgaOsInfo> {
    return camelize(await this.#session.call("guest-get-osinfo", undefined, deadline));
  }

  /** guest-get-host-name: the guest's host name. */
  async hostName(deadline: Deadline): Promise<string> {
    const reply = (await this.#session.call("guest-get-host-name", undefined, deadline)) as {
      "host-name": string;
    };
    return reply["host-name"];
  }

  /** guest-network-get-interfaces: interfaces, addresses and counters (the guest's view). */
  async networkInterfaces(deadline: Deadline): Promise<QgaNetworkInterface[]> {
    return camelize(await this.#session.call("guest-network-get-interfaces", undefined, deadline));
  }

  /** guest-get-fsinfo: the mounted filesystems. */
  async fsInfo(deadline: Deadline): Promise<QgaFilesystem[]> {
    return camelize(await this.#session.call("guest-get-fsinfo", undefined, deadline));
  }

  /** guest-get-users: the users logged in. */
  async users(deadline: Deadline): Promise<QgaUser[]> {
    return camelize(await this.#session.call("guest-get-users", undefined, deadline));
  }

  /**
   * Runs a program with guest-exec and polls guest-exec-status (1 ms after the start, then
   * twice as long each time, at most every 100 ms) until it has exited; resolves with its exit
   * status and output. Fails with CORRAL_GUEST_AGENT_ERROR when the agent cannot start it (a
   * missing program: "Failed to execute child process"), CORRAL_UNSUPPORTED for a `cwd` the
   * agent does not take, the deadline's error when it runs longer: then it goes on in the guest
   * unless `killAtDeadline` had timeout(1) end it, and its status is collected before a later
   * exec so the agent does not keep it.
   */
  async exec(
    request: QgaExecRequest,
    deadline: Deadline,
    options: QgaExecOptions = {},
  ): Promise<QgaExecResult> {
    if (request.cwd !== undefined && !(await this.capabilities(deadline)).execCwd) {
      throw new CorralError(
        ErrorCodes.UNSUPPORTED,
        `guest-exec ${request.path}: this guest agent takes no working directory (cwd); on a POSIX guest run the command through posixExecRequest({ argv, cwd }), which changes directory in /bin/sh`,
      );
    }
    const args = execArguments(request, deadline, options);
    await this.#tidy(deadline);
    const pin: Pin = {};
    const { pid } = (await this.#session.call("guest-exec", args, deadline, [], pin)) as {
      pid: number;
    };
    deadline.step(`guest-exec started guest pid ${pid}`);
    options.onStarted?.(pid);
    const context = [
      options.killAtDeadline
        ? `The program (guest pid ${pid}) runs under timeout(1) in the guest, which ends it at the deadline.`
        : `The program (guest pid ${pid}) is left running: qemu-ga has no command that kills what guest-exec started.`,
    ];
    let waitMs: number | undefined;
    try {
      for (;;) {
        const status = (await this.#session.call(
          "guest-exec-status",
          { pid },
          deadline,
          context,
          pin,
        )) as QgaExecStatus;
        if (status.exited) return execResult(pid, status);
        waitMs = nextPollMs(waitMs);
        await sleep(waitMs, undefined, { signal: deadline.signal }).catch(() => {
          throw deadline.error(context);
        });
      }
    } catch (error) {
      if (!(error instanceof QgaError)) this.#unreapedPids.add(pid);
      throw error;
    }
  }

  /**
   * Reads a file in the guest, chunk by chunk (64 KiB per round trip); the handle is always
   * closed, also when the caller stops early. Errors as for execute().
   */
  readFileChunks(path: string, deadline: Deadline): AsyncGenerator<Buffer> {
    const client = this;
    return (async function* () {
      await client.#tidy(deadline);
      yield* readFileChunks(client.#fileAgent(), path, deadline);
    })();
  }

  /**
   * Reads a whole file in the guest. Fails with CORRAL_OUTPUT_TOO_LARGE, having read no more,
   * once it holds more than `maxBytes` (default 256 MiB).
   */
  async readFile(
    path: string,
    deadline: Deadline,
    options: { maxBytes?: number } = {},
  ): Promise<Buffer> {
    const maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of this.readFileChunks(path, deadline)) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        throw new CorralError(
          ErrorCodes.OUTPUT_TOO_LARGE,
          `guest-file-read ${path}: the file holds more than maxBytes (${maxBytes} bytes)`,
        );
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /**
   * Writes `data` to a file in the guest (replacing it, or appending with `append`) in 1 MiB
   * chunks and closes it; resolves with the bytes written. qemu-ga 7.2 creates a missing file
   * with mode 0666: set the mode afterwards where that matters.
   */
  async writeFile(
    path: string,
    data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    deadline: Deadline,
    options: { append?: boolean } = {},
  ): Promise<number> {
    await this.#tidy(deadline);
    return writeFile(this.#fileAgent(), path, data, deadline, options);
  }

  /**
   * guest-shutdown, which answers nothing on success: a guest-sync-delimited sent behind it
   * tells. Fails with CORRAL_GUEST_AGENT_ERROR when the agent refuses; resolves with
   * `isConfirmed: true` when it answered the sync (it took the request), `false` when the
   * channel closed or stayed silent for 5 s (within the deadline): the guest may already be
   * going down — watch the VM to know.
   */
  shutdown(
    mode: QgaShutdownMode,
    deadline: Deadline,
    options: { confirmWithinMs?: number } = {},
  ): Promise<{ isConfirmed: boolean }> {
    return this.#session.exclusive("guest-shutdown", deadline, async (connection) => {
      deadline.step(`qga guest-shutdown ${mode}`);
      connection.send("guest-shutdown", { mode });
      const id = connection.sendConfirm();
      connection.needsSync = true;
      const silent = new Error("no confirmation");
      const window = AbortSignal.any([
        deadline.signal,
        AbortSignal.timeout(options.confirmWithinMs ?? SHUTDOWN_CONFIRM_MS),
      ]);
      let reply: QgaReply;
      try {
        reply = await connection.reply({
          signal: window,
          error: () => (deadline.isCallerAbort ? deadline.error() : silent),
        });
      } catch (error) {
        if (error === silent || isChannelBroken(error)) return { isConfirmed: false };
        throw error;
      }
      if ("error" in reply)
        throw new QgaError("guest-shutdown", reply.error.class, reply.error.desc);
      connection.needsSync = reply.return !== id;
      return { isConfirmed: reply.return === id };
    });
  }

  /** Whether close() was called: every call fails from then on. */
  get isClosed(): boolean {
    return this.#session.isClosed;
  }

  /** Closes the stream; calls in flight fail with CORRAL_GUEST_CHANNEL_BROKEN. Idempotent. */
  close(): void {
    this.#session.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Whether the agent rejects `name` among `args` of `command` by name (an older agent). */
  async #acceptsArgument(
    command: string,
    args: Record<string, unknown>,
    name: string,
    deadline: Deadline,
  ): Promise<boolean> {
    try {
      const reply = (await this.#session.call(command, args, deadline)) as { pid?: number };
      if (typeof reply.pid === "number") this.#unreapedPids.add(reply.pid);
      return true;
    } catch (error) {
      if (error instanceof QgaError) return !error.description.includes(`'${name}' is unexpected`);
      throw error;
    }
  }

  /** Closes handles and collects exited programs left by earlier calls that failed. */
  async #tidy(deadline: Deadline): Promise<void> {
    const jobs = [
      ...[...this.#unclosedHandles].map((handle) => ({
        isDone: async () => {
          await this.#session.call("guest-file-close", { handle }, deadline);
          return true;
        },
        forget: () => this.#unclosedHandles.delete(handle),
      })),
      ...[...this.#unreapedPids].map((pid) => ({
        isDone: async () =>
          ((await this.#session.call("guest-exec-status", { pid }, deadline)) as QgaExecStatus)
            .exited,
        forget: () => this.#unreapedPids.delete(pid),
      })),
    ];
    for (const job of jobs) {
      try {
        if (await job.isDone()) job.forget();
      } catch (error) {
        // The agent forgot it (it restarted): done. Other trouble: the call itself will say.
        if (!(error instanceof QgaError)) return;
        job.forget();
      }
    }
  }

  /** What one transfer calls, pinned to its connection. */
  #fileAgent(): QgaFileAgent {
    const pin: Pin = {};
    return {
      call: (command: string, args: Record<string, unknown>, deadline: Deadline) =>
        this.#session.call(command, args, deadline, [], pin),
      closeLater: (handle: number) => this.#unclosedHandles.add(handle),
    };
  }
}
