// One exit scope per running VM: every call pending on the VM races its VMM's exit, so that all of
// them fail at once with "machine exited" when it ends, not one by one at their timeouts.

import type { Deadline } from "../deadline.ts";
import type { ExitInfo } from "../host/supervised-process.ts";

export class ExitScope {
  readonly exited: Promise<ExitInfo>;
  readonly #toError: (during: string, info: ExitInfo) => Error;
  #info: ExitInfo | undefined;

  /** `toError` builds the error of a call pending when the VMM exited, from its exit `info`. */
  constructor(exited: Promise<ExitInfo>, toError: (during: string, info: ExitInfo) => Error) {
    this.#toError = toError;
    this.exited = exited.then((info) => {
      this.#info = info;
      return info;
    });
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#info;
  }

  /** `promise`, unless the deadline fires first (its error) or the VMM exits (exited error). */
  race<T>(promise: Promise<T>, deadline: Deadline, during: string): Promise<T> {
    if (this.#info) {
      // The call was made before its VMM's end was known: its own failure (e.g. QMP closed)
      // comes later and must not go unhandled.
      promise.catch(() => undefined);
      return Promise.reject(this.#toError(during, this.#info));
    }
    const exit = this.exited.then((info): never => {
      throw this.#toError(during, info);
    });
    exit.catch(() => undefined);
    return deadline.race(Promise.race([promise, exit]));
  }

  /** Resolves once the VMM has exited; fails at the deadline. */
  async untilExit(deadline: Deadline): Promise<ExitInfo> {
    return deadline.race(this.exited);
  }
}
