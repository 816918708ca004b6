// A persistent VMM writes its serial console into `console.log`: the process that launched it,
// or one that attached to it later, follows the file into its ConsoleLog as it grows, until the
// VMM exits or the process lets go of it.

import { type FileHandle, open } from "node:fs/promises";
import type { ConsoleLog } from "./console-log.ts";

/** How often the file is checked for new bytes: 100 ms. */
export const CONSOLE_POLL_MS = 100;
const READ_BYTES = 64 * 1024;

export class ConsoleFollower {
  readonly #path: string;
  readonly #console: ConsoleLog;
  #offset: number;
  #file: FileHandle | undefined;
  #reading: Promise<void> = Promise.resolve();
  #isStopped = false;
  readonly #timer: NodeJS.Timeout;

  /**
   * Feeds `console` with what is written to `path` after byte `offset`, checking every
   * CONSOLE_POLL_MS; a file that does not exist yet is waited for.
   */
  constructor(path: string, console: ConsoleLog, offset: number) {
    this.#path = path;
    this.#console = console;
    this.#offset = offset;
    this.#timer = setInterval(() => void this.#poll(), CONSOLE_POLL_MS);
    // The VMM runs on without this process: the follower must not keep it alive.
    this.#timer.unref();
  }

  /** Reads what was written up to now, then stops following. Idempotent. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#poll();
    this.#isStopped = true;
    await this.#reading;
    await this.#file?.close().catch(() => undefined);
    this.#file = undefined;
  }

  #poll(): Promise<void> {
    if (this.#isStopped) return this.#reading;
    this.#reading = this.#reading.then(() => this.#readNew()).catch(() => undefined);
    return this.#reading;
  }

  async #readNew(): Promise<void> {
    if (this.#isStopped) return;
    this.#file ??= await open(this.#path, "r").catch(() => undefined);
    if (!this.#file) return;
    const buffer = Buffer.alloc(READ_BYTES);
    for (;;) {
      const { bytesRead } = await this.#file.read(buffer, 0, READ_BYTES, this.#offset);
      if (bytesRead === 0) return;
      this.#offset += bytesRead;
      this.#console.write(Buffer.from(buffer.subarray(0, bytesRead)));
    }
  }
}
