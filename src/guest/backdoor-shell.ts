// The guest channel over the backdoor shell: waits for the banner, then runs one framed command
// at a time (see shell-framing.ts). Calls are queued, so concurrent callers are safe.

import type { Duplex } from "node:stream";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import {
  BANNER,
  commandLine,
  type FrameResult,
  newNonce,
  ReplyDecoder,
  SHELL_PRELUDE,
} from "./shell-framing.ts";

export interface ExecOptions {
  /** Called with stdout bytes as they arrive. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with the command's stderr once it has finished. */
  onStderr?: (chunk: Buffer) => void;
}

export type ExecResult = FrameResult;

type Reader = (chunk: Buffer) => void;

export class BackdoorShell {
  readonly #stream: Duplex;
  #reader: Reader | undefined;
  #buffered: Buffer[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #broken: Error | undefined;
  #closeListeners = new Set<(error: Error) => void>();

  private constructor(stream: Duplex) {
    this.#stream = stream;
    stream.on("data", (chunk: Buffer) => {
      if (this.#reader) this.#reader(chunk);
      else this.#buffered.push(chunk);
    });
    const onEnd = (error?: Error) => {
      this.#broken ??= new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        "the backdoor shell connection closed",
        {
          ...(error ? { cause: error } : {}),
        },
      );
      for (const listener of this.#closeListeners) listener(this.#broken);
    };
    stream.on("close", () => onEnd());
    stream.on("error", (error) => onEnd(error));
  }

  /** Waits on `stream` for the backdoor banner, then installs the framing function. */
  static async connect(
    stream: Duplex,
    deadline: Deadline,
    describe: () => string[],
  ): Promise<BackdoorShell> {
    const shell = new BackdoorShell(stream);
    let seen = "";
    await shell.#read(deadline, describe, (chunk) => {
      seen = (seen + chunk.toString("latin1")).slice(-4096);
      const at = seen.indexOf(BANNER);
      if (at < 0) return undefined;
      const afterBanner = Buffer.from(
        seen.slice(at + BANNER.length).replace(/^\r?\n/, ""),
        "latin1",
      );
      return { value: undefined, rest: afterBanner };
    });
    stream.write(`${SHELL_PRELUDE}\n`);
    return shell;
  }

  /** Runs `command` with bash in the guest; resolves with its exit code, stdout and stderr. */
  exec(
    command: string,
    deadline: Deadline,
    describe: () => string[],
    options: ExecOptions = {},
  ): Promise<ExecResult> {
    const run = async () => {
      if (this.#broken) throw this.#broken;
      if (deadline.signal.aborted) throw deadline.error(describe());
      const nonce = newNonce();
      const decoder = new ReplyDecoder(nonce, options.onStdout, options.onStderr);
      this.#stream.write(commandLine(nonce, command));
      try {
        return await this.#read(deadline, describe, (chunk) => {
          const done = decoder.push(chunk);
          return done ? { value: done.result, rest: done.rest } : undefined;
        });
      } catch (error) {
        // The command may still be running and writing: the stream is out of step for good.
        this.#broken ??= new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          "the backdoor shell is out of step after an interrupted command",
          { cause: error },
        );
        throw error;
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Closes the connection; pending and later calls fail. */
  close(): void {
    this.#stream.destroy();
  }

  /** Feeds incoming chunks to `step` until it returns a value, the deadline passes or the stream ends. */
  #read<T>(
    deadline: Deadline,
    describe: () => string[],
    step: (chunk: Buffer) => { value: T; rest: Buffer } | undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (outcome: () => void) => {
        this.#reader = undefined;
        deadline.signal.removeEventListener("abort", onAbort);
        this.#closeListeners.delete(onClose);
        outcome();
      };
      const onAbort = () => finish(() => reject(deadline.error(describe())));
      const onClose = (error: Error) => finish(() => reject(error));
      const reader: Reader = (chunk) => {
        let done: { value: T; rest: Buffer } | undefined;
        try {
          done = step(chunk);
        } catch (error) {
          finish(() => reject(error));
          return;
        }
        if (!done) return;
        const { value, rest } = done;
        finish(() => {
          if (rest.length > 0) this.#buffered.unshift(rest);
          resolve(value);
        });
      };
      if (deadline.signal.aborted) return onAbort();
      if (this.#broken) return reject(this.#broken);
      deadline.signal.addEventListener("abort", onAbort, { once: true });
      this.#closeListeners.add(onClose);
      this.#reader = reader;
      const backlog = this.#buffered;
      this.#buffered = [];
      for (const chunk of backlog) {
        if (this.#reader !== reader) {
          this.#buffered.push(chunk);
          continue;
        }
        reader(chunk);
      }
    });
  }
}
