// Reads a byte stream step by step: each read hands incoming chunks to a step function until it
// returns a value; bytes it did not consume stay for the next read.

import type { Readable } from "node:stream";
import { CorralError, ErrorCodes } from "../errors.ts";

export type Step<T> = (chunk: Buffer) => { value: T; rest: Buffer } | undefined;

/** When a read gives up: `signal` fires, and `error()` is what the read rejects with then. */
export interface ReadLimit {
  signal: AbortSignal;
  error: () => unknown;
}

export class ChunkReader {
  readonly #name: string;
  #step: ((chunk: Buffer) => void) | undefined;
  #buffered: Buffer[] = [];
  #closed: Error | undefined;
  readonly #closeListeners = new Set<(error: Error) => void>();

  constructor(name: string, stream: Readable) {
    this.#name = name;
    stream.on("data", (chunk: Buffer) => {
      if (this.#step) this.#step(chunk);
      else this.#buffered.push(chunk);
    });
    const onEnd = (error?: Error) => {
      this.#closed ??= new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `the ${this.#name} connection closed`,
        {
          ...(error ? { cause: error } : {}),
        },
      );
      for (const listener of this.#closeListeners) listener(this.#closed);
    };
    stream.on("close", () => onEnd());
    stream.on("end", () => onEnd());
    stream.on("error", (error) => onEnd(error));
  }

  get closedError(): Error | undefined {
    return this.#closed;
  }

  /** Feeds chunks to `step` until it returns a value, `limit` fires or the stream ends. */
  read<T>(limit: ReadLimit, step: Step<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (outcome: () => void) => {
        this.#step = undefined;
        limit.signal.removeEventListener("abort", onAbort);
        this.#closeListeners.delete(onClose);
        outcome();
      };
      const onAbort = () => finish(() => reject(limit.error()));
      const onClose = (error: Error) => finish(() => reject(error));
      const handle = (chunk: Buffer) => {
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
      if (limit.signal.aborted) return onAbort();
      if (this.#closed) return reject(this.#closed);
      limit.signal.addEventListener("abort", onAbort, { once: true });
      this.#closeListeners.add(onClose);
      this.#step = handle;
      const backlog = this.#buffered;
      this.#buffered = [];
      for (const chunk of backlog) {
        if (this.#step === handle) handle(chunk);
        else this.#buffered.push(chunk);
      }
    });
  }
}
