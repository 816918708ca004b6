// A VM's serial console as lines: kept in full for logs and errors, and passed to listeners; and
// as raw bytes: the most recent ones kept (a terminal replays them), each chunk passed on.

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC
const ANSI_ESCAPE = /\x1b\[[0-9;?=]*[A-Za-z]/g;

export type ConsoleListener = (line: string) => void;

/** How many of the latest raw console bytes recentBytes() can give: 256 KiB. */
export const CONSOLE_HISTORY_BYTES = 256 * 1024;

export class ConsoleLog {
  readonly #lines: string[] = [];
  readonly #listeners = new Set<ConsoleListener>();
  readonly #dataListeners = new Set<(chunk: Buffer) => void>();
  /** The latest raw chunks, CONSOLE_HISTORY_BYTES at most in all. */
  readonly #recent: Buffer[] = [];
  #recentBytes = 0;
  #partial = "";

  /** Feeds raw console bytes; complete lines go to the log and the listeners. */
  write(chunk: Buffer): void {
    this.#keep(chunk);
    for (const listener of this.#dataListeners) listener(chunk);
    const text = this.#partial + chunk.toString("utf8");
    const parts = text.split("\n");
    this.#partial = parts.pop() ?? "";
    for (const part of parts) this.#add(part);
  }

  /** Flushes a last line that had no newline (the VMM exited mid-line). */
  end(): void {
    if (this.#partial) this.#add(this.#partial);
    this.#partial = "";
  }

  get lines(): readonly string[] {
    return this.#lines;
  }

  /** The last `count` lines. */
  tail(count = 30): string[] {
    return this.#lines.slice(-count);
  }

  onLine(listener: ConsoleListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The latest raw console bytes, at most `maxBytes` (and CONSOLE_HISTORY_BYTES): escape sequences
   * and partial lines as the guest wrote them.
   */
  recentBytes(maxBytes = CONSOLE_HISTORY_BYTES): Buffer {
    const all = Buffer.concat(this.#recent, this.#recentBytes);
    return all.subarray(Math.max(0, all.length - maxBytes));
  }

  /** Calls `listener` with each raw chunk from now on; returns the unsubscribe function. */
  onData(listener: (chunk: Buffer) => void): () => void {
    this.#dataListeners.add(listener);
    return () => this.#dataListeners.delete(listener);
  }

  #keep(chunk: Buffer): void {
    const kept = chunk.subarray(Math.max(0, chunk.length - CONSOLE_HISTORY_BYTES));
    this.#recent.push(Buffer.from(kept));
    this.#recentBytes += kept.length;
    while (this.#recentBytes > CONSOLE_HISTORY_BYTES) {
      const first = this.#recent[0] as Buffer;
      const excess = this.#recentBytes - CONSOLE_HISTORY_BYTES;
      if (first.length <= excess) {
        this.#recent.shift();
        this.#recentBytes -= first.length;
      } else {
        this.#recent[0] = first.subarray(excess);
        this.#recentBytes -= excess;
      }
    }
  }

  #add(raw: string): void {
    const line = raw.replace(/\r/g, "").replace(ANSI_ESCAPE, "");
    this.#lines.push(line);
    for (const listener of this.#listeners) listener(line);
  }
}
