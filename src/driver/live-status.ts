// The terminal of a run of many test files: each test's lines behind its name, and on a TTY one
// status line under them (the tests running and for how long, the counts so far), redrawn in
// place. Elsewhere (CI logs, pipes) plain lines only.

import { Writable } from "node:stream";
import { styleText } from "node:util";
import { formatMs } from "../deadline.ts";

type Terminal = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

const REDRAW_MS = 1000;
const CLEAR_LINE = "\r\x1b[2K";

export class LiveStatus {
  readonly #terminal: Terminal;
  readonly #running = new Map<string, number>();
  readonly #counts = new Map<string, number>();
  readonly #timer: NodeJS.Timeout | undefined;
  #waiting: number;
  #shown = false;

  constructor(terminal: Terminal, total: number) {
    this.#terminal = terminal;
    this.#waiting = total;
    if (terminal.isTTY) {
      this.#timer = setInterval(() => this.#redraw(), REDRAW_MS);
      this.#timer.unref();
    }
  }

  get isTTY(): boolean {
    return this.#terminal.isTTY === true;
  }

  /** A stream whose every line goes out as `[name] line`. */
  linesOf(name: string): Writable & { isTTY: boolean } {
    const prefix = this.style("cyan", `[${name}]`);
    let partial = "";
    const stream = new Writable({
      write: (chunk: Buffer | string, _encoding, done) => {
        const lines = (partial + chunk.toString()).split("\n");
        partial = lines.pop() ?? "";
        if (lines.length) this.print(lines.map((line) => `${prefix} ${line}\n`).join(""));
        done();
      },
      final: (done) => {
        if (partial) this.print(`${prefix} ${partial}\n`);
        done();
      },
    });
    return Object.assign(stream, { isTTY: this.isTTY });
  }

  /** Writes whole lines above the status line. */
  print(text: string): void {
    if (!this.isTTY) {
      this.#terminal.write(text);
      return;
    }
    this.#terminal.write(`${this.#shown ? CLEAR_LINE : ""}${text}`);
    this.#shown = false;
    this.#redraw();
  }

  started(name: string): void {
    this.#waiting--;
    this.#running.set(name, performance.now());
    this.#redraw();
  }

  finished(name: string, status: string): void {
    this.#running.delete(name);
    this.#counts.set(status, (this.#counts.get(status) ?? 0) + 1);
    this.#redraw();
  }

  skipped(): void {
    this.#waiting--;
    this.#counts.set("skipped", (this.#counts.get("skipped") ?? 0) + 1);
  }

  /** Removes the status line and stops redrawing it. */
  close(): void {
    clearInterval(this.#timer);
    if (this.#shown) this.#terminal.write(CLEAR_LINE);
    this.#shown = false;
  }

  style(format: "cyan" | "green" | "red" | "yellow" | "dim", text: string): string {
    return this.isTTY ? styleText(format, text, { validateStream: false }) : text;
  }

  #redraw(): void {
    if (!this.isTTY) return;
    const now = performance.now();
    const running = [...this.#running].map(
      ([name, started]) => `${name} ${formatMs(now - started)}`,
    );
    const counts = [...this.#counts].map(([status, count]) => `${count} ${status}`);
    if (this.#waiting > 0) counts.push(`${this.#waiting} waiting`);
    const text = `running: ${running.join(", ") || "none"} · ${counts.join(", ") || "starting"}`;
    const width = Math.max(20, (this.#terminal.columns ?? 80) - 1);
    const line = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    this.#terminal.write(`${this.#shown ? CLEAR_LINE : ""}${this.style("dim", line)}`);
    this.#shown = true;
  }
}
