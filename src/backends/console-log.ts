// A VM's serial console as lines: kept in full for logs and errors, and passed to listeners.

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC
const ANSI_ESCAPE = /\x1b\[[0-9;?=]*[A-Za-z]/g;

export type ConsoleListener = (line: string) => void;

export class ConsoleLog {
  readonly #lines: string[] = [];
  readonly #listeners = new Set<ConsoleListener>();
  #partial = "";

  /** Feeds raw console bytes; complete lines go to the log and the listeners. */
  write(chunk: Buffer): void {
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

  #add(raw: string): void {
    const line = raw.replace(/\r/g, "").replace(ANSI_ESCAPE, "");
    this.#lines.push(line);
    for (const listener of this.#listeners) listener(line);
  }
}
