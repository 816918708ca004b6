// An ExecRequest checked, and turned into what a Linux channel runs: bash text for the backdoor
// shell, or an argv for guest-exec (through posixExecRequest, which adds the cwd and env).

import { CorralError, ErrorCodes } from "../../errors.ts";
import { shellQuote } from "../../guest/shell-quote.ts";
import type { ExecOutcome, ExecRequest } from "./guest-ops.ts";

/** The exit status of a command that timed out, whatever the guest reported (timeout(1)'s). */
export const EXIT_TIMED_OUT = 124;
/** The most stdin bytes a one-shot exec takes. */
export const MAX_STDIN_BYTES = 16 * 1024 * 1024;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/;

/**
 * Throws CORRAL_INVALID_ARGUMENT for a request without exactly one of command and argv, an
 * empty argv, a variable name that is not a shell name, a NUL anywhere, a bad user name, a
 * timeout that is not a positive number of ms, or more stdin than MAX_STDIN_BYTES. `cwd` is
 * checked by the channel (`checkPath`), whose paths differ.
 */
export function checkExecRequest(request: ExecRequest, checkPath: (path: string) => void): void {
  const invalid = (problem: string) =>
    new CorralError(ErrorCodes.INVALID_ARGUMENT, `exec: ${problem}`);
  if ((request.command === undefined) === (request.argv === undefined)) {
    throw invalid("give a command or an argv, and only one of them");
  }
  if (request.argv && (request.argv.length === 0 || request.argv[0] === "")) {
    throw invalid("argv needs a program");
  }
  const texts = [request.command ?? "", ...(request.argv ?? [])];
  for (const [name, value] of Object.entries(request.env ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw invalid(`${JSON.stringify(name)} is not a variable name (letters, digits and _)`);
    }
    texts.push(value);
  }
  if (texts.some((text) => text.includes("\0"))) throw invalid("a NUL character cannot be passed");
  if (request.cwd !== undefined) checkPath(request.cwd);
  if (request.user !== undefined && !USER_NAME.test(request.user)) {
    throw invalid(`${JSON.stringify(request.user)} is not a user name`);
  }
  const { timeoutMs } = request;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw invalid(`timeoutMs must be a positive number of milliseconds, not ${timeoutMs}`);
  }
  if (request.stdin && request.stdin.length > MAX_STDIN_BYTES) {
    throw invalid(
      `stdin is ${request.stdin.length} bytes, more than ${MAX_STDIN_BYTES}; copy large input as a file`,
    );
  }
}

/** The program and arguments of `request`: its argv, or bash -c its command; as `user` if given. */
export function linuxArgv(request: ExecRequest): string[] {
  const argv = request.argv ?? ["bash", "-c", request.command ?? ""];
  return request.user === undefined ? argv : ["runuser", "-u", request.user, "--", ...argv];
}

/**
 * Bash text that runs `request` (without stdin): into `cwd` (status 2 when it cannot, as dash
 * says), the variables exported, then the command, or its argv exec'd (a missing program is 127).
 */
export function linuxCommandText(request: ExecRequest, stdinFile?: string): string {
  const lines: string[] = [];
  if (stdinFile) lines.push(`exec <${shellQuote(stdinFile)} && rm -f -- ${shellQuote(stdinFile)}`);
  if (request.cwd !== undefined) lines.push(`cd -- ${shellQuote(request.cwd)} || exit 2`);
  for (const [name, value] of Object.entries(request.env ?? {})) {
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  if (request.argv || request.user !== undefined) {
    lines.push(`exec ${linuxArgv(request).map(shellQuote).join(" ")}`);
  } else {
    lines.push(request.command ?? "");
  }
  return lines.join("\n");
}

/** An outcome of a command killed at its timeout, with what it wrote until then. */
export function timedOut(stdout: Buffer, stderr: Buffer): ExecOutcome {
  return {
    exitCode: EXIT_TIMED_OUT,
    stdout,
    stderr,
    isTimedOut: true,
    isStdoutTruncated: false,
    isStderrTruncated: false,
  };
}
