// Encoding of commands for the backdoor shell and the pieces that decode its framed replies.
//
// One command is one line on hvc0: `__corral_exec NONCE $'<command, C-escaped>'` (or
// `__corral_fast`, `__corral_limit`: see shell-prelude.ts). The guest runs it with stdin from
// /dev/null and its stdout and stderr going straight to two virtio serial ports
// (`corral.stdout`, `corral.stderr`), so both stream live and unchanged. Afterwards it writes
// NONCE to each port and `NONCE X <exit code>\n` to hvc0 (console-events.ts). The nonce is 128
// random bits chosen per command, so output cannot fake a frame end. Output does not travel over
// hvc0 itself: QEMU drops console data when the host reads slower than the guest writes
// (virtio-console.c, flush_buf), while serial ports apply back-pressure. A command costs one
// round trip and one fork in the guest, or none for a simple command (`__corral_fast`).

import { randomBytes } from "node:crypto";
import { CorralError, ErrorCodes } from "../errors.ts";

export const BANNER = "Spawning backdoor root shell...";

/** The virtio serial ports the guest writes commands' stdout and stderr to. */
export const STDOUT_PORT = "corral.stdout";
export const STDERR_PORT = "corral.stderr";
/** The virtio serial port file contents travel through (transfer-port.ts). */
export const XFER_PORT = "corral.xfer";

/** Builtins that change the shell they run in; a command starting with one needs a subshell. */
const STATEFUL_BUILTINS = new Set([
  ".",
  "source",
  "alias",
  "bind",
  "break",
  "builtin",
  "caller",
  "cd",
  "command",
  "compgen",
  "complete",
  "compopt",
  "continue",
  "declare",
  "dirs",
  "disown",
  "enable",
  "eval",
  "exec",
  "exit",
  "export",
  "fc",
  "fg",
  "bg",
  "getopts",
  "hash",
  "history",
  "jobs",
  "let",
  "local",
  "logout",
  "mapfile",
  "popd",
  "pushd",
  "read",
  "readarray",
  "readonly",
  "return",
  "set",
  "shift",
  "shopt",
  "suspend",
  "times",
  "trap",
  "typeset",
  "ulimit",
  "umask",
  "unalias",
  "unset",
  "wait",
  "coproc",
  "function",
  "select",
  "time",
  "until",
  "while",
  "for",
  "if",
  "case",
  "{",
  "[[",
  "((",
]);

/**
 * True when `command` is one simple command that cannot change the shell it runs in: plain
 * words (no expansions, quotes, redirections, assignments or operators) led by a program or a
 * harmless builtin. Such a command runs in the backdoor shell itself, which saves the subshell's
 * fork: about 10 ms under TCG, most of a `true`'s round trip.
 */
export function isSimpleCommand(command: string): boolean {
  if (!/^[A-Za-z0-9_./:@%+,-]+( +[A-Za-z0-9_./:@%+,=-]+)*$/.test(command)) return false;
  const program = command.split(" ")[0] ?? "";
  return (
    !STATEFUL_BUILTINS.has(program) && !program.startsWith("__corral") && !program.includes("=")
  );
}

export function newNonce(): string {
  return `__corral_${randomBytes(16).toString("hex")}_`;
}

/** The token of one shell session (one prelude): 32 hex digits. */
export function newToken(): string {
  return randomBytes(16).toString("hex");
}

/** Bash ANSI-C quoting (`$'…'`) of arbitrary bytes; NUL cannot be in a shell string. */
export function quoteAnsiC(command: string): string {
  const bytes = Buffer.from(command, "utf8");
  if (bytes.includes(0)) {
    throw new CorralError(
      ErrorCodes.GUEST_COMMAND_INVALID,
      "the command contains a NUL byte, which no shell command can contain",
    );
  }
  let out = "$'";
  for (const byte of bytes) {
    const isPlain = byte >= 0x20 && byte < 0x7f && byte !== 0x27 && byte !== 0x5c;
    out += isPlain ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `${out}'`;
}

export interface CommandLineOptions {
  /**
   * Run in the backdoor shell itself even when it is not a simple command: only for corral's
   * own scripts, which leave the shell as they found it.
   */
  inShell?: boolean;
  /** Kill the command (and its process group) in the guest after this many milliseconds. */
  limitMs?: number;
  /**
   * A line the shell runs on its own before the command, unframed, its output going nowhere:
   * for work the guest starts while the shell is still reading the command.
   */
  leadingLine?: string;
}

/** The line that runs `command`. */
export function commandLine(
  nonce: string,
  command: string,
  options: CommandLineOptions = {},
): string {
  const quoted = quoteAnsiC(command);
  const leading = options.leadingLine === undefined ? "" : `${options.leadingLine}\n`;
  if (options.limitMs !== undefined) {
    return `${leading}__corral_limit ${nonce} ${Math.max(0, Math.round(options.limitMs * 1000))} ${quoted}\n`;
  }
  const runner = options.inShell || isSimpleCommand(command) ? "__corral_fast" : "__corral_exec";
  return `${leading}${runner} ${nonce} ${quoted}\n`;
}

/**
 * Splits a byte stream at the first occurrence of `marker`: bytes before it go to `onBytes` as
 * soon as they cannot be part of the marker; `push` returns the bytes after it once it is seen.
 * Kept bytes never exceed the marker's length, so large outputs stay linear.
 */
export class MarkerSplitter {
  readonly #marker: Buffer;
  readonly #onBytes: (bytes: Buffer) => void;
  #pending: Buffer = Buffer.alloc(0);

  constructor(marker: string, onBytes: (bytes: Buffer) => void) {
    this.#marker = Buffer.from(marker);
    this.#onBytes = onBytes;
  }

  /** Returns the bytes after the marker once it has been seen, else undefined. */
  push(chunk: Buffer): Buffer | undefined {
    const pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const at = pending.indexOf(this.#marker);
    if (at >= 0) {
      this.#emit(pending.subarray(0, at));
      this.#pending = Buffer.alloc(0);
      return pending.subarray(at + this.#marker.length);
    }
    const safe = pending.length - this.#partialMarkerLength(pending);
    this.#emit(pending.subarray(0, safe));
    this.#pending = Buffer.from(pending.subarray(safe));
    return undefined;
  }

  /** Length of the longest end of `pending` that is a beginning of the marker. */
  #partialMarkerLength(pending: Buffer): number {
    for (let length = Math.min(pending.length, this.#marker.length - 1); length > 0; length--) {
      if (pending.subarray(pending.length - length).equals(this.#marker.subarray(0, length)))
        return length;
    }
    return 0;
  }

  #emit(bytes: Buffer): void {
    if (bytes.length > 0) this.#onBytes(Buffer.from(bytes));
  }
}

/**
 * Collects chunks of one output stream and passes them on as they come. It keeps at most
 * `maxBytes`: what comes after is passed on but not kept.
 */
export class OutputCollector {
  #chunks: Buffer[] = [];
  #keptBytes = 0;
  #totalBytes = 0;
  #listener: ((chunk: Buffer) => void) | undefined;
  #isDropping = false;
  readonly #maxBytes: number;

  constructor(listener?: (chunk: Buffer) => void, maxBytes = Number.POSITIVE_INFINITY) {
    this.#listener = listener;
    this.#maxBytes = maxBytes;
  }

  readonly add = (chunk: Buffer): void => {
    if (this.#isDropping) return;
    this.#totalBytes += chunk.length;
    const room = this.#maxBytes - this.#keptBytes;
    if (room > 0) {
      const kept = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.#chunks.push(kept);
      this.#keptBytes += kept.length;
    }
    this.#listener?.(chunk);
  };

  /** Bytes seen, kept or not. */
  get totalBytes(): number {
    return this.#totalBytes;
  }

  /** True when more came than `maxBytes`. */
  get isOverflowed(): boolean {
    return this.#totalBytes > this.#maxBytes;
  }

  /** Forgets what was collected and ignores what comes next. */
  drop(): void {
    this.#isDropping = true;
    this.#chunks = [];
    this.#listener = undefined;
  }

  result(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}
