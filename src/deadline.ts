// One deadline object that travels down through every layer an operation touches, and the
// timers behind it, which take any length.

import { AbortedError, CorralError, ErrorCodes, TimeoutError } from "./errors.ts";

/**
 * The longest delay Node's timers hold: a longer one fires at once (or throws a RangeError), so
 * longer delays are waited out in chunks of this size.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options every waiting public API accepts. */
export interface WaitOptions {
  /** Milliseconds before the operation fails with a TimeoutError; any length, `Infinity` for none. */
  timeout?: number;
  /** Aborting fails the operation at once with an AbortedError. */
  signal?: AbortSignal;
}

/** How many steps a deadline's call log keeps (the last ones). */
const CALL_LOG_STEPS = 20;

/**
 * One operation's deadline, created once where a public API is entered and passed down as the
 * object, never wrapped in a new one. `signal` fires when the caller aborts or the time is up;
 * `error()` tells which, naming the operation (`what`), and ends with the call log (the steps
 * taken) and what `describeWith` provides (the machine's console tail, the VMM's last words).
 */
export class Deadline {
  readonly what: string;
  readonly timeoutMs: number;
  readonly startedAt = performance.now();
  readonly signal: AbortSignal;
  readonly #callerSignal: AbortSignal | undefined;
  readonly #callLog: string[] = [];
  #machine: string | undefined;
  #describe: (() => string[]) | undefined;

  /** `given` itself when it is a deadline (it travels on); else a new one from its options. */
  static of(given: WaitOptions | Deadline, what: string, defaultTimeoutMs: number): Deadline {
    return given instanceof Deadline ? given : new Deadline(what, given, defaultTimeoutMs);
  }

  /** Throws CORRAL_INVALID_ARGUMENT for a `timeout` that is negative or not a number. */
  constructor(what: string, options: WaitOptions, defaultTimeoutMs: number) {
    this.what = what;
    this.timeoutMs = requireTimeout(options.timeout ?? defaultTimeoutMs, what);
    this.#callerSignal = options.signal;
    const timer = timeoutSignal(this.timeoutMs);
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

  /** Notes a step of the operation, shown in the call log if it fails. */
  step(line: string): void {
    this.#callLog.push(`${formatMs(this.elapsedMs).padStart(8)}  ${line}`);
    if (this.#callLog.length > CALL_LOG_STEPS) this.#callLog.shift();
  }

  /** Names the machine and what describes it when the operation fails (e.g. its console tail). */
  describeWith(machine: string, describe: () => string[]): this {
    this.#machine = machine;
    this.#describe = describe;
    return this;
  }

  /** The call log and the description, for the end of an error message. */
  details(): string[] {
    return [...this.#callLogLines(), ...(this.#describe?.() ?? [])];
  }

  /**
   * The error to throw now that `signal` has fired. `details` (what the failing layer saw) come
   * first, then the call log and the description, unless `details` ends with that already.
   */
  error(details: readonly string[] = []): TimeoutError | AbortedError {
    const machine = this.#machine ? { machine: this.#machine } : {};
    const described = this.#describe?.() ?? [];
    const hasDescription =
      described.length > 0 && details.slice(-described.length).join("\n") === described.join("\n");
    const all = [...details, ...this.#callLogLines(), ...(hasDescription ? [] : described)];
    if (this.isCallerAbort) {
      return new AbortedError(`${this.what}: aborted after ${formatMs(this.elapsedMs)}`, {
        cause: this.#callerSignal?.reason,
        details: all,
        ...machine,
      });
    }
    return new TimeoutError(`${this.what}: timed out after ${formatMs(this.timeoutMs)}`, {
      details: all,
      ...machine,
    });
  }

  #callLogLines(): string[] {
    return this.#callLog.length > 0
      ? ["Call log:", ...this.#callLog.map((line) => `  ${line}`)]
      : [];
  }

  /** Throws error() if the deadline has fired. */
  throwIfDone(): void {
    if (this.signal.aborted) throw this.error();
  }

  /** `promise`, unless the deadline fires first: then error(). */
  async race<T>(promise: Promise<T>): Promise<T> {
    if (this.signal.aborted) {
      // Given up on before it was awaited: its own failure must not go unhandled.
      promise.catch(() => undefined);
      throw this.error();
    }
    const { promise: fired, reject } = Promise.withResolvers<never>();
    const onAbort = () => reject(this.error());
    this.signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([promise, fired]);
    } finally {
      this.signal.removeEventListener("abort", onAbort);
    }
  }
}

/**
 * Returns `ms` if it is a usable timeout: a number of milliseconds from 0 up, `Infinity` meaning no
 * limit. Throws CORRAL_INVALID_ARGUMENT, naming `what`, for anything else.
 */
export function requireTimeout(ms: unknown, what: string): number {
  if (typeof ms === "number" && ms >= 0) return ms;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `${what}: a timeout must be a number of milliseconds from 0 up (Infinity for no limit), not ${typeof ms === "number" ? ms : JSON.stringify(ms)}`,
  );
}

/** An AbortSignal that aborts after `ms` as AbortSignal.timeout() does, for any `ms`; never for Infinity. */
export function timeoutSignal(ms: number): AbortSignal {
  if (ms <= MAX_TIMER_MS) return AbortSignal.timeout(Math.max(0, Math.ceil(ms)));
  const controller = new AbortController();
  if (ms !== Number.POSITIVE_INFINITY) {
    setLongTimeout(
      () =>
        controller.abort(
          new DOMException("The operation was aborted due to timeout", "TimeoutError"),
        ),
      ms,
      { ref: false },
    );
  }
  return controller.signal;
}

/**
 * setTimeout() for any delay: `callback` runs after `ms` (never for Infinity), Node's timer re-armed
 * in chunks past MAX_TIMER_MS. With `ref: false` the timer does not keep the process alive.
 * Returns the function that cancels it.
 */
export function setLongTimeout(
  callback: () => void,
  ms: number,
  options: { ref?: boolean } = {},
): () => void {
  const due = performance.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = Math.max(0, Math.ceil(due - performance.now()));
    timer = setTimeout(
      () => (performance.now() >= due ? callback() : arm()),
      Math.min(left, MAX_TIMER_MS),
    );
    if (options.ref === false) timer.unref();
  };
  if (ms !== Number.POSITIVE_INFINITY) arm();
  return () => clearTimeout(timer);
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
