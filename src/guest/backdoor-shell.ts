// The guest channel over the backdoor shell: waits for the banner, then runs one framed command
// at a time (see shell-framing.ts). Calls are queued, so concurrent callers are safe.

import type { Readable, Writable } from "node:stream";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { ChunkReader } from "./chunk-reader.ts";
import {
  BANNER,
  commandLine,
  MarkerSplitter,
  newNonce,
  OutputCollector,
  SHELL_PRELUDE,
  StatusDecoder,
} from "./shell-framing.ts";

export interface ExecOptions {
  /** Called with stdout bytes as they arrive. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with stderr bytes as they arrive. */
  onStderr?: (chunk: Buffer) => void;
  /** Run in the shell itself, not a subshell: for corral scripts that leave no state behind. */
  inShell?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface ShellStreams {
  /** hvc0: commands go in, exit codes come out. */
  console: Readable & Writable;
  /** The `corral.stdout` virtio port. */
  stdout: Readable;
  /** The `corral.stderr` virtio port. */
  stderr: Readable;
}

export class BackdoorShell {
  readonly #input: Writable;
  readonly #console: ChunkReader;
  readonly #stdout: ChunkReader;
  readonly #stderr: ChunkReader;
  #queue: Promise<unknown> = Promise.resolve();
  #broken: Error | undefined;
  /** A command whose call ended before it did: the next call waits for its end first. */
  #unfinished: Reply | undefined;

  private constructor(streams: ShellStreams) {
    this.#input = streams.console;
    this.#console = new ChunkReader("backdoor shell", streams.console);
    this.#stdout = new ChunkReader("backdoor shell's stdout port", streams.stdout);
    this.#stderr = new ChunkReader("backdoor shell's stderr port", streams.stderr);
  }

  /** Waits for the backdoor banner, then installs the framing function. */
  static async connect(
    streams: ShellStreams,
    deadline: Deadline,
    describe: () => string[],
  ): Promise<BackdoorShell> {
    const shell = new BackdoorShell(streams);
    await shell.#awaitBanner(deadline, describe);
    return shell;
  }

  /**
   * Takes over a shell that is already running, idle and framed, as in a VM restored from a
   * snapshot of a machine whose shell was connected: no banner comes and no prelude is needed.
   */
  static attach(streams: ShellStreams): BackdoorShell {
    return new BackdoorShell(streams);
  }

  /** Runs `fn` when no command is running, holding back the commands queued after it. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(fn, fn);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Marks the shell unusable for good (the guest is going down). */
  invalidate(reason: string): void {
    this.#broken ??= new CorralError(ErrorCodes.GUEST_CHANNEL_BROKEN, reason);
  }

  /**
   * Sends a command that ends the shell (poweroff, reboot) after the commands queued before it,
   * without waiting for a reply; the shell is unusable afterwards.
   */
  sendFinal(command: string): Promise<void> {
    return this.exclusive(async () => {
      if (this.#broken) throw this.#broken;
      this.#input.write(commandLine(newNonce(), command));
      this.invalidate(`the guest is running ${command}`);
    });
  }

  /**
   * Runs `command` with bash in the guest; resolves with its exit code, stdout and stderr. When
   * the deadline ends a call before the command does, the command goes on in the guest; the
   * next call first waits (within its own deadline) until that command has finished, dropping
   * its output, so the channel stays in step.
   */
  exec(
    command: string,
    deadline: Deadline,
    describe: () => string[],
    options: ExecOptions = {},
  ): Promise<ExecResult> {
    return this.exclusive(async (): Promise<ExecResult> => {
      if (this.#broken) throw this.#broken;
      if (deadline.signal.aborted) throw deadline.error(describe());
      if (this.#unfinished) await this.#finish(this.#unfinished, deadline, describe);
      const reply = new Reply(newNonce(), options);
      this.#input.write(commandLine(reply.nonce, command, options.inShell));
      await this.#finish(reply, deadline, describe);
      return reply.result();
    });
  }

  /** Reads the rest of `reply` from the three streams; remembers it when the deadline ends first. */
  async #finish(reply: Reply, deadline: Deadline, describe: () => string[]): Promise<void> {
    const pending: Promise<void>[] = [];
    if (reply.exitCode === undefined) {
      pending.push(
        this.#console
          .read(deadline, describe, (chunk) => {
            const done = reply.status.push(chunk);
            return done ? { value: done.exitCode, rest: done.rest } : undefined;
          })
          .then((exitCode) => {
            reply.exitCode = exitCode;
          }),
      );
    }
    for (const [reader, splitter, key] of [
      [this.#stdout, reply.stdoutSplitter, "stdoutDone"],
      [this.#stderr, reply.stderrSplitter, "stderrDone"],
    ] as const) {
      if (reply[key]) continue;
      pending.push(
        reader
          .read(deadline, describe, (chunk) => {
            const rest = splitter.push(chunk);
            return rest ? { value: undefined, rest } : undefined;
          })
          .then(() => {
            reply[key] = true;
          }),
      );
    }
    const outcomes = await Promise.allSettled(pending);
    const failure = outcomes.find((outcome) => outcome.status === "rejected");
    if (!failure) {
      if (this.#unfinished === reply) this.#unfinished = undefined;
      return;
    }
    const error = failure.reason as unknown;
    const channelGone =
      error instanceof CorralError && error.code === ErrorCodes.GUEST_CHANNEL_BROKEN;
    if (channelGone) {
      this.#broken ??= error;
    } else {
      // The command still runs in the guest: its output is dropped from now on.
      reply.drop();
      this.#unfinished = reply;
    }
    throw error;
  }

  async #awaitBanner(deadline: Deadline, describe: () => string[]): Promise<void> {
    const splitter = new MarkerSplitter(BANNER, () => {});
    await this.#console.read(deadline, describe, (chunk) => {
      const after = splitter.push(chunk);
      if (after === undefined) return undefined;
      return { value: undefined, rest: after[0] === 0x0a ? after.subarray(1) : after };
    });
    this.#input.write(`${SHELL_PRELUDE}\n`);
  }
}

/** One command's reply as it arrives: its status line on hvc0 and its output on the two ports. */
class Reply {
  readonly nonce: string;
  readonly status: StatusDecoder;
  readonly stdoutSplitter: MarkerSplitter;
  readonly stderrSplitter: MarkerSplitter;
  exitCode: number | undefined;
  stdoutDone = false;
  stderrDone = false;
  readonly #stdout: OutputCollector;
  readonly #stderr: OutputCollector;

  constructor(nonce: string, options: ExecOptions) {
    this.nonce = nonce;
    this.status = new StatusDecoder(nonce);
    this.#stdout = new OutputCollector(options.onStdout);
    this.#stderr = new OutputCollector(options.onStderr);
    this.stdoutSplitter = new MarkerSplitter(nonce, this.#stdout.add);
    this.stderrSplitter = new MarkerSplitter(nonce, this.#stderr.add);
  }

  /** From now on, output is neither kept nor passed on (nobody waits for it any more). */
  drop(): void {
    this.#stdout.drop();
    this.#stderr.drop();
  }

  result(): ExecResult {
    return {
      exitCode: this.exitCode ?? -1,
      stdout: this.#stdout.result(),
      stderr: this.#stderr.result(),
    };
  }
}
