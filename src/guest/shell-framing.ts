// Encoding of commands for the backdoor shell and decoding of its framed replies.
//
// One command is one line on hvc0: `__corral_exec NONCE $'<command, C-escaped>'`. The guest-side
// function (see SHELL_PRELUDE) runs it in a subshell with stdin from /dev/null and its stdout and
// stderr going straight to two virtio serial ports (`corral.stdout`, `corral.stderr`), so both
// stream live and unchanged. Afterwards it writes NONCE to each port and `NONCE X <exit code>\n`
// to hvc0. The nonce is 128 random bits chosen per command, so output cannot fake a frame end.
// Output does not travel over hvc0 itself: QEMU drops console data when the host reads slower
// than the guest writes (virtio-console.c, flush_buf), while serial ports apply back-pressure.
// A command costs one round trip and one fork in the guest, or none for a simple command
// (`__corral_fast`).

import { randomBytes } from "node:crypto";
import { CorralError, ErrorCodes } from "../errors.ts";

export const BANNER = "Spawning backdoor root shell...";

/** The virtio serial ports the guest writes commands' stdout and stderr to. */
export const STDOUT_PORT = "corral.stdout";
export const STDERR_PORT = "corral.stderr";
/** The virtio serial port file contents travel through (transfer-port.ts). */
export const XFER_PORT = "corral.xfer";

/**
 * Sent once after the banner: opens the stdout and stderr ports as fds 8 and 9 of the shell and
 * notes the transfer port's device (all found by name in sysfs, which needs no udev), and
 * defines the functions every command line calls.
 */
export const SHELL_PRELUDE = [
  "for __p in /sys/class/virtio-ports/*; do",
  '  read -r __name 2>/dev/null < "$__p/name" || continue;',
  `  if [ "$__name" = ${STDOUT_PORT} ]; then exec 8>"/dev/\${__p##*/}"; fi;`,
  `  if [ "$__name" = ${STDERR_PORT} ]; then exec 9>"/dev/\${__p##*/}"; fi;`,
  `  if [ "$__name" = ${XFER_PORT} ]; then __corral_xfer="/dev/\${__p##*/}"; fi;`,
  "done; unset __p __name;",
  "__corral_exec() {",
  "  local __n=$1 __c=$2;",
  '  ( unset __n; set --; eval "$__c" ) </dev/null >&8 2>&9 8>&- 9>&-;',
  '  __corral_end "$__n" $?;',
  "};",
  "__corral_fast() {",
  '  eval "$2" </dev/null >&8 2>&9 8>&- 9>&-;',
  '  __corral_end "$1" $?;',
  "};",
  "__corral_end() {",
  '  printf "%s" "$1" >&8; printf "%s" "$1" >&9;',
  '  printf "%sX%d\\n" "$1" "$2";',
  "}",
].join(" ");

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

/**
 * The line that runs `command`. `inShell` runs it in the backdoor shell itself even when it is
 * not a simple command: only for corral's own scripts, which leave the shell as they found it.
 */
export function commandLine(nonce: string, command: string, inShell = false): string {
  const runner = inShell || isSimpleCommand(command) ? "__corral_fast" : "__corral_exec";
  return `${runner} ${nonce} ${quoteAnsiC(command)}\n`;
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

/** Collects chunks of one output stream and passes them on as they come. */
export class OutputCollector {
  #chunks: Buffer[] = [];
  #listener: ((chunk: Buffer) => void) | undefined;
  #isDropping = false;

  constructor(listener?: (chunk: Buffer) => void) {
    this.#listener = listener;
  }

  readonly add = (chunk: Buffer): void => {
    if (this.#isDropping) return;
    this.#chunks.push(chunk);
    this.#listener?.(chunk);
  };

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

/** Decodes hvc0's side of a reply: `NONCE X <code>\n`, after anything else the shell printed. */
export class StatusDecoder {
  readonly #splitter: MarkerSplitter;
  #status: Buffer | undefined;

  /** `onOther` gets bytes on hvc0 that are not the status line (output of the shell itself). */
  constructor(nonce: string, onOther: (chunk: Buffer) => void = () => {}) {
    this.#splitter = new MarkerSplitter(`${nonce}X`, onOther);
  }

  /** Returns the exit code and the bytes after the reply once complete, else undefined. */
  push(chunk: Buffer): { exitCode: number; rest: Buffer } | undefined {
    if (this.#status === undefined) {
      const after = this.#splitter.push(chunk);
      if (after === undefined) return undefined;
      this.#status = after;
    } else {
      this.#status = Buffer.concat([this.#status, chunk]);
    }
    const newline = this.#status.indexOf(0x0a);
    if (newline < 0) return undefined;
    const text = this.#status.subarray(0, newline).toString("latin1");
    if (!/^\d+$/.test(text)) {
      throw new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `malformed exit status from the backdoor shell: ${JSON.stringify(text)}`,
      );
    }
    return { exitCode: Number(text), rest: this.#status.subarray(newline + 1) };
  }
}
