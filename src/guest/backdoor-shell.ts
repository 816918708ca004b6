// The guest channel over the backdoor shell: waits for the banner, then runs one framed command
// at a time (see shell-framing.ts). Calls are queued, so concurrent callers are safe. After a
// guest reboot, `reconnect` waits for the new shell's banner on the same connections.

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

  /** After a guest reboot: forgets the old shell and waits for the new one's banner. */
  async reconnect(deadline: Deadline, describe: () => string[]): Promise<void> {
    this.#broken = undefined;
    this.#stdout.discard();
    this.#stderr.discard();
    await this.#awaitBanner(deadline, describe);
  }

  /** Marks the shell unusable until `reconnect` (the guest is going down). */
  invalidate(reason: string): void {
    this.#broken ??= new CorralError(ErrorCodes.GUEST_CHANNEL_BROKEN, reason);
  }

  /**
   * Sends a command that ends the shell (poweroff, reboot) after the commands queued before it,
   * without waiting for a reply; the shell is unusable afterwards until `reconnect`.
   */
  sendFinal(command: string): Promise<void> {
    return this.exclusive(async () => {
      if (this.#broken) throw this.#broken;
      this.#input.write(commandLine(newNonce(), command));
      this.invalidate(`the guest is running ${command}`);
    });
  }

  /** Runs `command` with bash in the guest; resolves with its exit code, stdout and stderr. */
  exec(
    command: string,
    deadline: Deadline,
    describe: () => string[],
    options: ExecOptions = {},
  ): Promise<ExecResult> {
    return this.exclusive(async (): Promise<ExecResult> => {
      if (this.#broken) throw this.#broken;
      if (deadline.signal.aborted) throw deadline.error(describe());
      const nonce = newNonce();
      const stdout = new OutputCollector(options.onStdout);
      const stderr = new OutputCollector(options.onStderr);
      const status = new StatusDecoder(nonce);
      const untilMarker = (splitter: MarkerSplitter) => (chunk: Buffer) => {
        const rest = splitter.push(chunk);
        return rest ? { value: undefined, rest } : undefined;
      };
      this.#input.write(commandLine(nonce, command));
      try {
        const [exitCode] = await Promise.all([
          this.#console.read(deadline, describe, (chunk) => {
            const done = status.push(chunk);
            return done ? { value: done.exitCode, rest: done.rest } : undefined;
          }),
          this.#stdout.read(deadline, describe, untilMarker(new MarkerSplitter(nonce, stdout.add))),
          this.#stderr.read(deadline, describe, untilMarker(new MarkerSplitter(nonce, stderr.add))),
        ]);
        return { exitCode, stdout: stdout.result(), stderr: stderr.result() };
      } catch (error) {
        // The command may still be running and writing: the stream is out of step for good.
        this.#broken ??= new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          "the backdoor shell is out of step after an interrupted command",
          { cause: error },
        );
        throw error;
      }
    });
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
