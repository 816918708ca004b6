// The test driver's log: lines on the terminal (prefixed by machine, console lines dimmed, nested
// steps with their durations, colour only on a TTY) and, in the output folder, one JSON event per
// line (events.jsonl) plus each machine's full console log.

import { AsyncLocalStorage } from "node:async_hooks";
import { createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import { styleText } from "node:util";
import { formatMs } from "../deadline.ts";

export type DriverEvent =
  | { type: "log"; message: string; machine?: string }
  | { type: "step-start"; title: string; depth: number; machine?: string }
  | {
      type: "step-end";
      title: string;
      depth: number;
      durationMs: number;
      ok: boolean;
      error?: string;
      machine?: string;
    }
  | { type: "console"; machine: string; line: string }
  | { type: "result"; ok: boolean; durationMs: number; error?: string };

export interface DriverLogOptions {
  /** Where lines go; stderr by default. Colour is used only when it is a TTY. */
  terminal?: NodeJS.WritableStream & { isTTY?: boolean };
  /** The output folder: events.jsonl and <machine>.console.log are written there. */
  outputDir?: string;
}

export class DriverLog {
  readonly #terminal: NodeJS.WritableStream & { isTTY?: boolean };
  readonly #outputDir: string | undefined;
  readonly #events: WriteStream | undefined;
  readonly #consoleFiles = new Map<string, WriteStream>();
  /** The steps enclosing the current async context, outermost first; parallel steps each have theirs. */
  readonly #stack = new AsyncLocalStorage<readonly string[]>();
  readonly #open = new Set<readonly string[]>();
  /** Whether serial console lines are shown on the terminal (they are always kept in files). */
  serialStdout = true;
  /** After close(), whatever a test body left running can no longer write anything. */
  #isClosed = false;

  constructor(options: DriverLogOptions = {}) {
    this.#terminal = options.terminal ?? process.stderr;
    this.#outputDir = options.outputDir;
    this.#events = options.outputDir
      ? createWriteStream(join(options.outputDir, "events.jsonl"))
      : undefined;
  }

  /** The innermost steps running now, each as `outer > inner`; several when steps run in parallel. */
  get openSteps(): string[] {
    const paths = [...this.#open].map((path) => path.join(" > "));
    return paths.filter((path) => !paths.some((other) => other.startsWith(`${path} > `)));
  }

  log(message: string, machine?: string): void {
    this.#emit({ type: "log", message, ...(machine ? { machine } : {}) });
    this.#line(machine ? `${this.#machine(machine)}: ${message}` : message);
  }

  console(machine: string, line: string): void {
    this.#emit({ type: "console", machine, line });
    if (this.#isClosed) return;
    this.#consoleFile(machine)?.write(`${line}\n`);
    if (this.serialStdout)
      this.#line(`${this.#machine(machine)} ${this.#style("dim", `# ${line}`)}`);
  }

  /** Runs `fn` as a nested step: its title, then its outcome and duration. */
  async step<T>(title: string, fn: () => Promise<T>, machine?: string): Promise<T> {
    const outer = this.#stack.getStore() ?? [];
    const depth = outer.length;
    const shown = machine ? `${this.#machine(machine)}: ${title}` : title;
    this.#emit({ type: "step-start", title, depth, ...(machine ? { machine } : {}) });
    this.#line(shown, depth);
    const path = [...outer, machine ? `${machine}: ${title}` : title];
    this.#open.add(path);
    const started = performance.now();
    try {
      const result = await this.#stack.run(path, fn);
      this.#end(title, depth, started, undefined, machine);
      return result;
    } catch (error) {
      this.#end(title, depth, started, error, machine);
      throw error;
    } finally {
      this.#open.delete(path);
    }
  }

  result(ok: boolean, durationMs: number, error?: string): void {
    this.#emit({ type: "result", ok, durationMs, ...(error ? { error } : {}) });
  }

  /** Flushes and closes the files; later lines and events are dropped. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    const streams = [...this.#consoleFiles.values(), ...(this.#events ? [this.#events] : [])];
    await Promise.all(
      streams.map((stream) => new Promise<void>((resolve) => stream.end(() => resolve()))),
    );
  }

  #end(title: string, depth: number, started: number, error: unknown, machine?: string): void {
    const durationMs = performance.now() - started;
    const ok = error === undefined;
    this.#emit({
      type: "step-end",
      title,
      depth,
      durationMs,
      ok,
      ...(ok ? {} : { error: error instanceof Error ? error.message : String(error) }),
      ...(machine ? { machine } : {}),
    });
    const outcome = ok ? this.#style("green", "ok") : this.#style("red", "failed");
    this.#line(this.#style("dim", `(${outcome} in ${formatMs(durationMs)})`), depth + 1);
  }

  #consoleFile(machine: string): WriteStream | undefined {
    if (!this.#outputDir) return undefined;
    let file = this.#consoleFiles.get(machine);
    if (!file) {
      file = createWriteStream(join(this.#outputDir, `${machine}.console.log`), { flags: "a" });
      this.#consoleFiles.set(machine, file);
    }
    return file;
  }

  #emit(event: DriverEvent): void {
    if (this.#isClosed) return;
    this.#events?.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  }

  #line(text: string, depth = this.#stack.getStore()?.length ?? 0): void {
    if (this.#isClosed) return;
    this.#terminal.write(`${"  ".repeat(depth)}${text}\n`);
  }

  #machine(name: string): string {
    return this.#style("bold", name);
  }

  #style(format: "dim" | "bold" | "green" | "red", text: string): string {
    return this.#terminal.isTTY ? styleText(format, text, { validateStream: false }) : text;
  }
}
