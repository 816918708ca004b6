// Encoding of commands for the backdoor shell and decoding of its framed replies.
//
// One command is one line: `__corral_exec NONCE $'<command, C-escaped>'`. The guest-side function
// (SHELL_PRELUDE) runs it in a subshell with stdin from /dev/null, stdout straight to hvc0 and
// stderr to a file, then prints `NONCE E` + the stderr bytes (when there are any) and
// `NONCE X <exit code>\n`. The nonce is 128 random bits chosen per command, so reply bytes cannot
// fake a frame boundary. A command costs one fork in the guest and one round trip.

import { randomBytes } from "node:crypto";
import { CorralError, ErrorCodes } from "../errors.ts";

export const BANNER = "Spawning backdoor root shell...";

/** Sent once after the banner: the function every command line calls. */
export const SHELL_PRELUDE = [
  "__corral_exec() {",
  "  local __n=$1 __c=$2 __e=/dev/shm/corral-stderr.$$;",
  '  ( unset __n; set --; eval "$__c" ) </dev/null 2>"$__e";',
  "  local __r=$?;",
  '  if [ -s "$__e" ]; then printf "%sE" "$__n"; cat "$__e"; fi;',
  '  printf "%sX%d\\n" "$__n" "$__r";',
  "}",
].join(" ");

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

export function commandLine(nonce: string, command: string): string {
  return `__corral_exec ${nonce} ${quoteAnsiC(command)}\n`;
}

export interface FrameResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

/**
 * Incremental decoder of one reply. Feed it chunks as they arrive; it passes stdout and stderr
 * bytes to the callbacks as soon as they cannot be part of a frame marker, and returns the
 * result (plus any bytes past the end of the reply) once the exit code line is complete.
 * Bytes are kept as a list of chunks, never re-concatenated, so large outputs stay linear.
 */
export class ReplyDecoder {
  readonly #nonce: Buffer;
  readonly #onStdout: ((chunk: Buffer) => void) | undefined;
  readonly #onStderr: ((chunk: Buffer) => void) | undefined;
  #phase: "stdout" | "stderr" | "status" = "stdout";
  #pending: Buffer = Buffer.alloc(0);
  readonly #stdout: Buffer[] = [];
  readonly #stderr: Buffer[] = [];

  constructor(
    nonce: string,
    onStdout?: (chunk: Buffer) => void,
    onStderr?: (chunk: Buffer) => void,
  ) {
    this.#nonce = Buffer.from(nonce);
    this.#onStdout = onStdout;
    this.#onStderr = onStderr;
  }

  /** Returns the result and the bytes after it once the reply is complete, else undefined. */
  push(chunk: Buffer): { result: FrameResult; rest: Buffer } | undefined {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    for (;;) {
      if (this.#phase === "status") {
        const newline = this.#pending.indexOf(0x0a);
        if (newline < 0) return undefined;
        const exitCode = Number(this.#pending.subarray(0, newline).toString("latin1"));
        return {
          result: {
            exitCode,
            stdout: Buffer.concat(this.#stdout),
            stderr: Buffer.concat(this.#stderr),
          },
          rest: this.#pending.subarray(newline + 1),
        };
      }
      const at = this.#pending.indexOf(this.#nonce);
      const marker = at >= 0 ? this.#pending[at + this.#nonce.length] : undefined;
      if (at < 0 || marker === undefined) {
        // Keep what could be the start of a marker; emit the rest.
        const safe = at >= 0 ? at : this.#pending.length - this.#partialMarkerLength();
        this.#emit(this.#pending.subarray(0, safe));
        this.#pending = this.#pending.subarray(safe);
        return undefined;
      }
      this.#emit(this.#pending.subarray(0, at));
      this.#pending = this.#pending.subarray(at + this.#nonce.length + 1);
      if (marker === 0x45 /* E */ && this.#phase === "stdout") this.#phase = "stderr";
      else if (marker === 0x58 /* X */) this.#phase = "status";
      else {
        throw new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          "backdoor shell sent a malformed reply frame",
        );
      }
    }
  }

  /** Length of the longest end of the pending bytes that is a beginning of the nonce. */
  #partialMarkerLength(): number {
    const pending = this.#pending;
    for (let length = Math.min(pending.length, this.#nonce.length - 1); length > 0; length--) {
      if (pending.subarray(pending.length - length).equals(this.#nonce.subarray(0, length)))
        return length;
    }
    return 0;
  }

  #emit(bytes: Buffer): void {
    if (bytes.length === 0) return;
    const copy = Buffer.from(bytes);
    if (this.#phase === "stdout") {
      this.#stdout.push(copy);
      this.#onStdout?.(copy);
    } else {
      this.#stderr.push(copy);
      this.#onStderr?.(copy);
    }
  }
}
