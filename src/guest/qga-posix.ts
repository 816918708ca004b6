// What guest-exec lacks on POSIX guests, done by /bin/sh in the guest: a working directory, and
// environment variables added to the agent's environment instead of replacing it.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { QgaExecRequest } from "./qga-exec.ts";

export interface PosixCommand {
  /** The program and its arguments; the program is looked up in PATH as a shell does. */
  argv: readonly string[];
  /** Directory to run in; the shell's message and status (2 in dash) when it cannot go there. */
  cwd?: string;
  /** Variables added to (or replacing those of) the agent's environment. */
  env?: Readonly<Record<string, string>>;
  /** Bytes for stdin (see QgaExecRequest.input). */
  input?: Uint8Array | string;
}

/**
 * The script sh runs. Its arguments: the directory (or ""), the number of variables, the
 * `NAME=value` words, then argv. `exec` replaces the shell, so the pid guest-exec reports is the
 * program's own, and a missing program ends with status 127 and sh's message on stderr.
 */
const SCRIPT = [
  "d=$1 n=$2; shift 2",
  'while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done',
  '[ -z "$d" ] || cd -- "$d" || exit',
  'exec "$@"',
].join("\n");

/** The script's $0, shown in sh's own error messages. */
const SCRIPT_NAME = "corral-exec";

/**
 * A guest-exec request that runs `command.argv` through `/bin/sh` in `cwd` with `env` added.
 * Throws CORRAL_INVALID_ARGUMENT for an empty argv or cwd, or a variable name that is not a
 * shell name.
 */
export function posixExecRequest(command: PosixCommand): QgaExecRequest {
  if (command.argv.length === 0 || command.argv[0] === "") {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, "posixExecRequest: argv is empty");
  }
  if (command.cwd === "") {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, "posixExecRequest: cwd is empty");
  }
  const assignments = Object.entries(command.env ?? {}).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `posixExecRequest: ${JSON.stringify(name)} is not a shell variable name (letters, digits and _, not starting with a digit)`,
      );
    }
    return `${name}=${value}`;
  });
  return {
    path: "/bin/sh",
    args: [
      "-c",
      SCRIPT,
      SCRIPT_NAME,
      command.cwd ?? "",
      String(assignments.length),
      ...assignments,
      ...command.argv,
    ],
    ...(command.input !== undefined ? { input: command.input } : {}),
  };
}
