// guest-exec as the agent offers it: a request is turned into the command's arguments, then its
// status is polled (guest-exec-status) until the program has exited; the output comes only
// then, base64 in the status, at most 16 MiB per stream (qga/commands.c GUEST_EXEC_MAX_OUTPUT).

import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";

/** What to run with guest-exec. */
export interface QgaExecRequest {
  /** The program: a path, or a name the agent looks up in its own PATH. */
  path: string;
  args?: readonly string[];
  /**
   * The program's whole environment: guest-exec replaces the agent's environment with it rather
   * than adding to it (give PATH when the program needs one). Absent: the agent's own.
   * posixExecRequest() adds variables instead.
   */
  env?: Readonly<Record<string, string>>;
  /**
   * Bytes for the program's stdin, which is closed after them; absent: stdin is /dev/null. At
   * most MAX_EXEC_INPUT_BYTES: they travel base64 inside the one JSON request.
   */
  input?: Uint8Array | string;
  /** Capture stdout and stderr, each apart (default true); false sends both to /dev/null. */
  captureOutput?: boolean;
  /**
   * The working directory. No released qemu-ga (up to 10.x) takes one: guest-exec runs in the
   * agent's own directory, and asking for `cwd` there fails with CORRAL_UNSUPPORTED rather than
   * being dropped. On POSIX guests posixExecRequest() changes directory in a shell instead.
   */
  cwd?: string;
}

export interface QgaExecOptions {
  /**
   * Run the program under timeout(1) in the guest, limited to the deadline's remaining time
   * (SIGTERM, SIGKILL 2 s later, to its whole process group). qemu-ga has no command that kills
   * what guest-exec started, so without this a program outlives its caller's deadline. Needs a
   * POSIX guest with coreutils' or busybox's `timeout`. Default false.
   */
  killAtDeadline?: boolean;
  /** Called with the program's pid in the guest once the agent has started it. */
  onStarted?: (pid: number) => void;
}

export interface QgaExecResult {
  /** The program's pid in the guest. */
  pid: number;
  /** Its exit status; 128 + the signal number when a signal ended it, as a shell reports it. */
  exitCode: number;
  /** The signal that ended it (on Windows: the unhandled exception code), if one did. */
  signal: number | undefined;
  stdout: Buffer;
  stderr: Buffer;
  /** The agent kept only the first 16 MiB of stdout and dropped the rest. */
  stdoutTruncated: boolean;
  /** The agent kept only the first 16 MiB of stderr and dropped the rest. */
  stderrTruncated: boolean;
}

/** What guest-exec-status returns, as the agent spells it. */
export interface QgaExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: boolean;
  "err-truncated"?: boolean;
}

/** How long the first status poll waits after guest-exec, in ms; each next one waits twice as long. */
const POLL_FIRST_MS = 1;
/** The longest wait between two status polls, in ms. */
const POLL_MAX_MS = 100;
/** The most stdin bytes a request carries (the agent's JSON parser takes tokens up to 64 MiB). */
export const MAX_EXEC_INPUT_BYTES = 16 * 1024 * 1024;
/** How long timeout(1) waits after SIGTERM before SIGKILL, in seconds. */
const KILL_AFTER_SECONDS = 2;

/**
 * The arguments of guest-exec for `request`. Throws CORRAL_INVALID_ARGUMENT for an empty path,
 * a NUL in any string or an environment name with `=`; with `killAtDeadline` and a deadline
 * that has fired, the deadline's error.
 */
export function execArguments(
  request: QgaExecRequest,
  deadline: Deadline,
  options: QgaExecOptions = {},
): Record<string, unknown> {
  const fail = (problem: string) =>
    new CorralError(ErrorCodes.INVALID_ARGUMENT, `guest-exec ${request.path}: ${problem}`);
  if (request.path === "") throw fail("the program's path is empty");
  const env = Object.entries(request.env ?? {}).map(([name, value]) => {
    if (name === "" || name.includes("="))
      throw fail(`${JSON.stringify(name)} is not a variable name`);
    return `${name}=${value}`;
  });
  let path = request.path;
  let args = [...(request.args ?? [])];
  if (options.killAtDeadline && Number.isFinite(deadline.remainingMs)) {
    deadline.throwIfDone();
    const seconds = (Math.max(1, deadline.remainingMs) / 1000).toFixed(3);
    args = ["-k", String(KILL_AFTER_SECONDS), seconds, path, ...args];
    path = "timeout";
  }
  for (const text of [path, ...args, ...env, request.cwd ?? ""]) {
    if (text.includes("\0")) throw fail(`${JSON.stringify(text)} holds a NUL character`);
  }
  const input = request.input === undefined ? undefined : Buffer.from(request.input);
  if (input && input.length > MAX_EXEC_INPUT_BYTES) {
    throw fail(
      `stdin is ${input.length} bytes, more than the ${MAX_EXEC_INPUT_BYTES} a request carries`,
    );
  }
  return {
    path,
    ...(args.length > 0 ? { arg: args } : {}),
    ...(request.env ? { env } : {}),
    ...(input !== undefined ? { "input-data": input.toString("base64") } : {}),
    "capture-output": request.captureOutput ?? true,
    ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
  };
}

/** The result of an exited program from its last status. */
export function execResult(pid: number, status: QgaExecStatus): QgaExecResult {
  const signal = status.signal;
  return {
    pid,
    exitCode: status.exitcode ?? (signal !== undefined ? 128 + signal : 0),
    signal,
    stdout: Buffer.from(status["out-data"] ?? "", "base64"),
    stderr: Buffer.from(status["err-data"] ?? "", "base64"),
    stdoutTruncated: status["out-truncated"] === true,
    stderrTruncated: status["err-truncated"] === true,
  };
}

/** The wait before the next status poll, after one of `previousMs`. */
export function nextPollMs(previousMs: number | undefined): number {
  return previousMs === undefined ? POLL_FIRST_MS : Math.min(POLL_MAX_MS, previousMs * 2);
}
