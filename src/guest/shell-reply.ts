// One command's reply as it arrives: its status line on hvc0 and its output on the two ports.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { ShellReply } from "./backdoor-shell.ts";
import type { ReadLimit } from "./chunk-reader.ts";
import type { ConsoleEvent } from "./console-events.ts";
import { MarkerSplitter, OutputCollector } from "./shell-framing.ts";

/** The status line of a command: it exited, was killed at its limit, or could not start. */
export type ReplyStatus = Extract<ConsoleEvent, { nonce: string }>;

export interface ReplyOptions {
  onStdout?: ((chunk: Buffer) => void) | undefined;
  onStderr?: ((chunk: Buffer) => void) | undefined;
  maxBuffer: number;
  /** Keep the first maxBuffer bytes of a stream that writes more, instead of failing. */
  truncate?: boolean | undefined;
}

export class Reply {
  readonly nonce: string;
  /** The call, for messages: `machine: execute("…")`. */
  readonly what: string;
  readonly describe: () => string[];
  readonly stdoutSplitter: MarkerSplitter;
  readonly stderrSplitter: MarkerSplitter;
  isStdoutDone = false;
  isStderrDone = false;
  status: ReplyStatus | undefined;
  /** Set when the reply can never complete (the shell died, the channel broke). */
  failure: Error | undefined;
  readonly #abort = new AbortController();
  readonly #stdout: OutputCollector;
  readonly #stderr: OutputCollector;
  readonly #maxBuffer: number;
  readonly #isTruncating: boolean;
  #onStatus: (() => void) | undefined;

  constructor(nonce: string, what: string, describe: () => string[], options: ReplyOptions) {
    this.nonce = nonce;
    this.what = what;
    this.describe = describe;
    this.#maxBuffer = options.maxBuffer;
    this.#isTruncating = options.truncate === true;
    this.#stdout = new OutputCollector(options.onStdout, options.maxBuffer);
    this.#stderr = new OutputCollector(options.onStderr, options.maxBuffer);
    this.stdoutSplitter = new MarkerSplitter(nonce, this.#stdout.add);
    this.stderrSplitter = new MarkerSplitter(nonce, this.#stderr.add);
  }

  /** Fires when the reply fails (see `failure`). */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  settle(status: ReplyStatus): void {
    this.status ??= status;
    this.#onStatus?.();
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.#abort.abort(error);
  }

  /** Resolves once the status line has come; rejects with `limit.error()` if `limit` fires first. */
  waitStatus(limit: ReadLimit): Promise<void> {
    if (this.status) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (outcome: () => void) => {
        this.#onStatus = undefined;
        limit.signal.removeEventListener("abort", onAbort);
        outcome();
      };
      const onAbort = () => finish(() => reject(limit.error()));
      if (limit.signal.aborted) return onAbort();
      limit.signal.addEventListener("abort", onAbort, { once: true });
      this.#onStatus = () => finish(resolve);
    });
  }

  /** From now on, output is neither kept nor passed on (nobody waits for it any more). */
  drop(): void {
    this.#stdout.drop();
    this.#stderr.drop();
  }

  /**
   * The result of a complete reply. Throws CORRAL_OUTPUT_TOO_LARGE when a stream overflowed
   * `maxBuffer` (unless truncating), and CORRAL_GUEST_COMMAND_FAILED when the guest could not start the command.
   */
  result(status: ReplyStatus): ShellReply {
    if (status.kind === "not-started") {
      throw new CorralError(
        ErrorCodes.GUEST_COMMAND_FAILED,
        `${this.what}: the guest could not start the command (it is out of processes or memory)`,
        { details: this.describe() },
      );
    }
    const exitCode = status.kind === "exited" ? status.exitCode : -1;
    for (const [name, collector] of [
      ["stdout", this.#stdout],
      ["stderr", this.#stderr],
    ] as const) {
      if (status.kind === "killed" || this.#isTruncating || !collector.isOverflowed) continue;
      throw new CorralError(
        ErrorCodes.OUTPUT_TOO_LARGE,
        `${this.what}: the command wrote ${collector.totalBytes} bytes to ${name}, more than maxBuffer (${this.#maxBuffer} bytes); it exited with code ${exitCode}. Raise maxBuffer, or take the output as it comes with onStdout/onStderr`,
      );
    }
    return {
      exitCode,
      stdout: this.#stdout.result(),
      stderr: this.#stderr.result(),
      isKilled: status.kind === "killed",
      ...(this.#isTruncating
        ? {
            isStdoutTruncated: this.#stdout.isOverflowed,
            isStderrTruncated: this.#stderr.isOverflowed,
          }
        : {}),
    };
  }
}
