// One deadline object that travels down through every layer an operation touches.

import { AbortedError, TimeoutError } from "./errors.ts";

/** Options every waiting public API accepts. */
export interface WaitOptions {
  /** Milliseconds before the operation fails with a TimeoutError. */
  timeout?: number;
  /** Aborting fails the operation at once with an AbortedError. */
  signal?: AbortSignal;
}

/**
 * A point in time plus an optional abort signal. `signal` fires when either the
 * caller aborts or the time is up; `error()` tells which, in words about `what`.
 */
export class Deadline {
  readonly what: string;
  readonly timeoutMs: number;
  readonly startedAt = performance.now();
  readonly signal: AbortSignal;
  readonly #callerSignal: AbortSignal | undefined;

  constructor(what: string, options: WaitOptions, defaultTimeoutMs: number) {
    this.what = what;
    this.timeoutMs = options.timeout ?? defaultTimeoutMs;
    this.#callerSignal = options.signal;
    const timer = AbortSignal.timeout(Math.max(0, Math.ceil(this.timeoutMs)));
    this.signal = options.signal ? AbortSignal.any([options.signal, timer]) : timer;
  }

  get elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  get remainingMs(): number {
    return Math.max(0, this.timeoutMs - this.elapsedMs);
  }

  get isCallerAbort(): boolean {
    return this.#callerSignal?.aborted === true;
  }

  /** The error to throw now that `signal` has fired; `details` end the message. */
  error(details: readonly string[] = [], machine?: string): TimeoutError | AbortedError {
    if (this.isCallerAbort) {
      return new AbortedError(`${this.what}: aborted after ${formatMs(this.elapsedMs)}`, {
        cause: this.#callerSignal?.reason,
        details,
        ...(machine ? { machine } : {}),
      });
    }
    return new TimeoutError(`${this.what}: timed out after ${formatMs(this.timeoutMs)}`, {
      details,
      ...(machine ? { machine } : {}),
    });
  }
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
