// A command with live stdin over the backdoor shell: the shell runs a relay script, which starts
// the command as a job (in a pseudo-terminal with `script` when asked) and reads control lines
// from the host on the `corral.xfer` port: stdin bytes, end of stdin, a signal, a new terminal
// size, the end. The job's output goes to the stdout and stderr ports as any command's does;
// when it ends, the relay's helper reports its status on hvc0 under a nonce of its own, and the
// host answers with the end line, after which the relay exits with the job's status.
//
// Why the transfer port: a relay that read hvc0 would swallow the next process's commands if
// the host went away mid-session; on a virtio port, the host going away reads as end of file,
// and the relay then kills the job and lets the shell go on. Lines carry the session's key, so
// lines left from an earlier session are skipped.

import { randomBytes } from "node:crypto";
import { CorralError, ErrorCodes } from "../errors.ts";
import { quoteAnsiC } from "./shell-framing.ts";

/** What the host sends to a relay, one line each. */
export type ControlLine =
  | { kind: "stdin"; bytes: Uint8Array }
  | { kind: "eof" }
  | { kind: "signal"; signal: string }
  | { kind: "resize"; columns: number; rows: number }
  | { kind: "end" };

/**
 * The most raw bytes one stdin line carries (each may take 4 characters escaped). The relay's
 * `read` takes a byte per system call from a port: stdin is for typing and small inputs.
 */
const STDIN_LINE_BYTES = 4 * 1024;

/** A relay session's key: 16 hex digits that start each of its control lines. */
export function newSessionKey(): string {
  return randomBytes(8).toString("hex");
}

/**
 * A signal name as kill(1) takes it (`TERM`, `SIGTERM`, `9`) in the form the relay passes on:
 * upper case without `SIG`. Throws CORRAL_INVALID_ARGUMENT for anything else.
 */
export function signalName(signal: string): string {
  const name = signal.trim().toUpperCase().replace(/^SIG/, "");
  if (/^([A-Z][A-Z0-9]{0,9}|RTMIN(\+\d{1,2})?|RTMAX(-\d{1,2})?|\d{1,2})$/.test(name)) return name;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `${JSON.stringify(signal)} is not a signal: give a name such as TERM, INT, KILL, or a number`,
  );
}

/** Checks a terminal size: whole numbers from 1 to 1000. */
export function checkTerminalSize(columns: number, rows: number): void {
  for (const [name, value] of [
    ["columns", columns],
    ["rows", rows],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 1000) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `a terminal's ${name} must be a whole number from 1 to 1000, not ${value}`,
      );
    }
  }
}

/** The text of `line` for the relay of session `key` (one or more lines). */
export function controlText(key: string, line: ControlLine): string {
  switch (line.kind) {
    case "stdin": {
      let text = "";
      for (let at = 0; at < line.bytes.length; at += STDIN_LINE_BYTES) {
        text += `${key} d${escapeBytes(line.bytes.subarray(at, at + STDIN_LINE_BYTES))}\n`;
      }
      return text;
    }
    case "eof":
      return `${key} e\n`;
    case "signal":
      return `${key} s${signalName(line.signal)}\n`;
    case "resize":
      checkTerminalSize(line.columns, line.rows);
      return `${key} r${line.columns} ${line.rows}\n`;
    case "end":
      return `${key} q\n`;
  }
}

/** Bytes as printf's `%b` reads them back: printable ASCII as it is, the rest as `\xHH`. */
function escapeBytes(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) {
    const isPlain = byte >= 0x20 && byte < 0x7f && byte !== 0x5c;
    text += isPlain ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return text;
}

export interface RelayOptions {
  /** The session's key (newSessionKey). */
  key: string;
  /** The nonce under which the job's end is reported on hvc0 (newNonce). */
  jobNonce: string;
  /** Run in a pseudo-terminal of this size (`script` from util-linux). */
  tty?: { columns: number; rows: number } | undefined;
}

/**
 * The bash the backdoor shell runs for `command` (bash text): see the file's header. In the job,
 * stdin is the relay's pipe; with a tty, the terminal is stdin, stdout and stderr of the command
 * and its output comes on the stdout port. Signals go to the job's process group, or with a tty
 * to every process on the terminal. The relay exits with the job's status.
 */
export function relayScript(command: string, options: RelayOptions): string {
  const { key, jobNonce, tty } = options;
  if (tty) checkTerminalSize(tty.columns, tty.rows);
  // In the terminal: its size, its name and the leader's pid for the relay, then the command.
  const inTerminal = tty
    ? `stty cols ${tty.columns} rows ${tty.rows} 2>/dev/null; t=$(tty); printf '%s\\n' "\${t#/dev/}" >"$__CORRAL_TTY"; c=$__CORRAL_CMD; unset __CORRAL_CMD __CORRAL_TTY; exec bash -c "$c"`
    : "";
  const job = tty
    ? `SHELL=/bin/bash __CORRAL_CMD="$__cmd" __CORRAL_TTY="$__tf" script -q -e -c ${quoteAnsiC(inTerminal)} /dev/null <&0 >&"$__so" 2>&1 {__so}>&- {__o}>&- &`
    : `( exec {__so}>&- {__o}>&-; unset __k __e __t __tf __x __r __w __pg __f __s; eval "$__cmd" ) <&0 >&"$__so" &`;
  return [
    `__k=${key} __e=${jobNonce} __t=${tty ? 1 : 0} __cmd=${quoteAnsiC(command)}`,
    "__tf=/run/corral-tty-$BASHPID",
    "trap '' PIPE",
    // The host's lines come on the transfer port; events go to hvc0 (the shell's stdout).
    'exec {__x}<"$__corral_xfer" {__o}>"/proc/$$/fd/1" {__so}>&1 || exit 70',
    "coproc __J {",
    "  exec {__x}<&-; set -m",
    `  ${job}`,
    '  echo "$!"; wait "$!"; __s=$?',
    '  printf "%sX%d\\n" "$__e" "$__s" >&"$__o"; echo "$__s"',
    // Bash closes a coproc's descriptors once it has reaped it: it stays until stdin closes.
    "  IFS= read -r _",
    "}",
    // The relay's own copies of the coproc's pipes, which bash leaves alone.
    `exec {__r}<&"\${__J[0]}" {__w}>&"\${__J[1]}" {__so}>&- {__o}>&-`,
    `eval "exec \${__J[0]}<&- \${__J[1]}>&-"`,
    'IFS= read -r -u "$__r" __pg',
    // The terminal's processes, once the job has named its terminal.
    '__pts() { [ "$__t" = 1 ] && IFS= read -r __tty <"$__tf" 2>/dev/null; }',
    "__end=0",
    'while IFS= read -r -u "$__x" __f; do',
    `  [[ $__f == "$__k "* ]] || continue; __f=\${__f#"$__k "}`,
    "  case $__f in",
    `    d*) printf "%b" "\${__f:1}" >&"$__w" 2>/dev/null;;`,
    "    e) exec {__w}>&-; __w=;;",
    `    s*) if __pts; then pkill "-\${__f:1}" -t "$__tty"; fi; kill "-\${__f:1}" -- "-$__pg" 2>/dev/null;;`,
    `    r*) if __pts; then __f=\${__f:1}; stty -F "/dev/$__tty" cols "\${__f% *}" rows "\${__f#* }" 2>/dev/null; fi;;`,
    "    q) __end=1; break;;",
    "  esac",
    "done",
    // The host went away (end of file on the port): the job goes too.
    'if [ "$__end" = 0 ]; then __pts && pkill -KILL -t "$__tty"; kill -KILL -- "-$__pg" 2>/dev/null; fi',
    '[ -n "$__w" ] && exec {__w}>&-',
    'IFS= read -r -u "$__r" __s; rm -f -- "$__tf"',
    `exit "\${__s:-255}"`,
  ].join("\n");
}
