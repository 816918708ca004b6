// One user of a guest channel at a time, in call order. Waiting for one's turn is bounded by the
// caller's own limit: a call queued behind a stuck one fails at its deadline, not at the other's.

import type { ReadLimit } from "./chunk-reader.ts";

export class ChannelLock {
  #holder: string | undefined;
  readonly #waiters: { what: string; take: () => void }[] = [];

  /** What the current holder is doing, for the error of a call that gave up waiting. */
  get holder(): string | undefined {
    return this.#holder;
  }

  /** Runs `fn` once the channel is free; rejects with `limit.error()` if `limit` fires first. */
  async run<T>(what: string, limit: ReadLimit, fn: () => Promise<T>): Promise<T> {
    await this.#acquire(what, limit);
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  #acquire(what: string, limit: ReadLimit): Promise<void> {
    if (limit.signal.aborted) return Promise.reject(limit.error());
    if (this.#holder === undefined) {
      this.#holder = what;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        what,
        take: () => {
          limit.signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(limit.error());
      };
      limit.signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #release(): void {
    const next = this.#waiters.shift();
    this.#holder = next?.what;
    next?.take();
  }
}
