// GuestOps over the backdoor shell of a Machine: commands through Machine.execute (one round
// trip, output streamed) and Machine.spawn (stdin, pty, signals, resize), files through the
// machine's copies with a spool file in the VM's folder, the guest hashing the bytes as they pass.
// The shell runs one command at a time: while a streaming exec runs, other operations wait.

import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes, TimeoutError } from "../../errors.ts";
import { shellQuote } from "../../guest/shell-quote.ts";
import type { Machine } from "../../machine/machine.ts";
import { checkExecRequest, EXIT_TIMED_OUT, linuxCommandText, timedOut } from "./exec-request.ts";
import {
  checkWriteOptions,
  HashingSource,
  requireSha256,
  uploadName,
  type WriteOptions,
} from "./file-uploads.ts";
import type {
  ExecOutcome,
  ExecRequest,
  ExecStreamHandlers,
  GuestCapabilities,
  RunningExec,
  SystemInfo,
} from "./guest-ops.ts";
import { parseSystemInfo, systemInfoScript } from "./linux-info.ts";
import { LinuxGuestOps, type ScriptResult } from "./linux-ops.ts";
import { parseStat, statScript, validateLinuxPath } from "./linux-scripts.ts";

/** The most bytes of each of stdout and stderr a one-shot exec keeps (Machine's default). */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export class LinuxBackdoorOps extends LinuxGuestOps {
  readonly capabilities: GuestCapabilities = {
    channel: "backdoor",
    os: "linux",
    streaming: true,
    interactiveStdin: true,
    pty: true,
    signals: true,
    maxOutputBytes: MAX_OUTPUT_BYTES,
  };
  readonly #machine: Machine;

  constructor(machine: Machine) {
    super();
    this.#machine = machine;
  }

  async ping(deadline: Deadline): Promise<void> {
    await this.#run("true", deadline);
  }

  async exec(request: ExecRequest, deadline: Deadline): Promise<ExecOutcome> {
    checkExecRequest(request, validateLinuxPath);
    const stdinFile = request.stdin ? await this.#upload(request.stdin, deadline) : undefined;
    const collected = { stdout: new Collector(), stderr: new Collector() };
    const { timeoutMs } = request;
    const isOwnLimit = timeoutMs !== undefined && timeoutMs < deadline.remainingMs;
    try {
      const result = await this.#machine.execute(linuxCommandText(request, stdinFile), {
        encoding: "buffer",
        timeout: isOwnLimit ? timeoutMs : deadline.remainingMs,
        signal: deadline.signal,
        maxBuffer: MAX_OUTPUT_BYTES,
        truncate: true,
        onStdout: collected.stdout.add,
        onStderr: collected.stderr.add,
      });
      return {
        exitCode: result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        isTimedOut: false,
        isStdoutTruncated: result.isStdoutTruncated === true,
        isStderrTruncated: result.isStderrTruncated === true,
      };
    } catch (error) {
      if (error instanceof TimeoutError && isOwnLimit && !deadline.signal.aborted) {
        return timedOut(collected.stdout.bytes(), collected.stderr.bytes());
      }
      if (deadline.signal.aborted) throw deadline.error();
      throw error;
    }
  }

  async execStream(
    request: ExecRequest & { tty?: boolean; columns?: number; rows?: number },
    handlers: ExecStreamHandlers,
    deadline: Deadline,
  ): Promise<RunningExec> {
    checkExecRequest(request, validateLinuxPath);
    // The deadline bounds the start (the wait for the shell); the command then runs until it
    // ends, its timeoutMs passes, or it is killed.
    const start = new AbortController();
    const onAbort = () => start.abort();
    deadline.signal.addEventListener("abort", onAbort, { once: true });
    let running: Awaited<ReturnType<Machine["spawn"]>>;
    try {
      running = await this.#machine.spawn(linuxCommandText(request), {
        onStdout: handlers.onStdout,
        onStderr: handlers.onStderr,
        signal: start.signal,
        ...(request.timeoutMs !== undefined ? { timeout: request.timeoutMs } : {}),
        ...(request.tty
          ? { tty: { columns: request.columns ?? 80, rows: request.rows ?? 24 } }
          : {}),
      });
    } catch (error) {
      if (deadline.signal.aborted) throw deadline.error();
      throw error;
    } finally {
      deadline.signal.removeEventListener("abort", onAbort);
    }
    if (request.stdin) running.writeStdin(request.stdin);
    return {
      writeStdin: (chunk) => running.writeStdin(chunk),
      closeStdin: () => running.closeStdin(),
      signal: (name) => running.signal(name),
      resize: (columns, rows) => running.resize(columns, rows),
      exited: running.exited.then(({ exitCode, isTimedOut }) => ({
        exitCode: isTimedOut ? EXIT_TIMED_OUT : exitCode,
        isTimedOut,
      })),
    };
  }

  readFile(path: string, deadline: Deadline): AsyncIterable<Buffer> {
    const ops = this;
    return (async function* () {
      validateLinuxPath(path);
      const stat = parseStat(
        path,
        (await ops.script(`read file ${path}`, statScript(path, { follow: true }), deadline, path))
          .stdout,
      );
      if (stat.type !== "file") {
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          `read file ${path}: it is a ${stat.type}, not a regular file`,
        );
      }
      const spool = ops.#spoolPath();
      try {
        const sent = await ops.#machine.copyFromVm(path, spool, {
          ...ops.#wait(deadline),
          sha256: true,
        });
        const received = new HashingSource(createReadStream(spool));
        for await (const _ of received.chunks);
        if (received.sha256 !== sent.sha256) {
          throw new CorralError(
            ErrorCodes.GUEST_CHANNEL_BROKEN,
            `read file ${path}: the bytes that came have sha256 ${received.sha256}, those the guest sent ${sent.sha256}`,
          );
        }
        yield* createReadStream(spool) as AsyncIterable<Buffer>;
      } finally {
        await rm(spool, { force: true });
      }
    })();
  }

  async writeFile(
    path: string,
    data: AsyncIterable<Uint8Array>,
    options: WriteOptions,
    deadline: Deadline,
  ): Promise<{ sizeBytes: number; sha256: string }> {
    validateLinuxPath(path);
    checkWriteOptions(options);
    const spool = this.#spoolPath();
    const temporary = uploadName(path);
    let isInGuest = false;
    try {
      const source = new HashingSource(data);
      await pipeline(source.chunks, createWriteStream(spool, { mode: 0o600 }), {
        signal: deadline.signal,
      });
      requireSha256(path, source.sha256, options.sha256);
      // The guest hashes the bytes as they arrive, on its other vCPU while it writes them.
      const landed = await this.#machine.copyFromHost(spool, temporary, {
        ...this.#wait(deadline),
        sha256: true,
      });
      isInGuest = true;
      return await this.commitUpload(path, temporary, source, options, deadline, landed.sha256);
    } catch (error) {
      if (isInGuest) await this.#run(`rm -f -- ${shellQuote(temporary)}`, deadline).catch(() => {});
      if (deadline.signal.aborted) throw deadline.error();
      throw error;
    } finally {
      await rm(spool, { force: true });
    }
  }

  async systemInfo(deadline: Deadline): Promise<SystemInfo> {
    const result = await this.script("system info", systemInfoScript(true), deadline);
    return parseSystemInfo(result.stdout);
  }

  async shutdown(mode: "powerdown" | "reboot", deadline: Deadline): Promise<void> {
    const verb = mode === "reboot" ? "reboot" : "poweroff";
    await this.script(`shutdown (${mode})`, `systemctl --no-block ${verb}`, deadline);
  }

  protected async runScript(script: string, deadline: Deadline): Promise<ScriptResult> {
    const result = await this.#run(script, deadline);
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  }

  async #run(command: string, deadline: Deadline) {
    try {
      return await this.#machine.execute(command, this.#wait(deadline));
    } catch (error) {
      if (deadline.signal.aborted) throw deadline.error();
      throw error;
    }
  }

  /** Stdin bytes as a file in the guest, which the command's text opens and removes. */
  async #upload(bytes: Uint8Array, deadline: Deadline): Promise<string> {
    const spool = this.#spoolPath();
    const target = `/tmp/.corral-stdin-${randomUUID()}`;
    try {
      await pipeline([bytes], createWriteStream(spool, { mode: 0o600 }));
      await this.#machine.copyFromHost(spool, target, this.#wait(deadline));
      return target;
    } finally {
      await rm(spool, { force: true });
    }
  }

  #wait(deadline: Deadline) {
    return { timeout: deadline.remainingMs, signal: deadline.signal };
  }

  /** A host file beside the VM's disk, for bytes on their way in or out. */
  #spoolPath(): string {
    const folder = this.#machine.stateDir;
    if (!folder) {
      throw new CorralError(ErrorCodes.MACHINE_NOT_RUNNING, `${this.#machine.name}: not started`);
    }
    return join(folder, `spool-${randomUUID()}`);
  }
}

/** Output kept as it comes, up to the channel's limit (for a command killed at its timeout). */
class Collector {
  #chunks: Buffer[] = [];
  #bytes = 0;
  readonly add = (chunk: Buffer): void => {
    const room = MAX_OUTPUT_BYTES - this.#bytes;
    if (room <= 0) return;
    const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#chunks.push(kept);
    this.#bytes += kept.length;
  };
  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}
