// Turning the API's exec fields into a GuestOps ExecRequest (exactly one of command and argv,
// stdin decoded), and a command's output into the API's answer (text, or base64 when it is not
// UTF-8).

import { isUtf8 } from "node:buffer";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { ExecOutcome, ExecRequest } from "../../manager/guest/guest-ops.ts";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface ExecFields {
  command?: string | undefined;
  argv?: string[] | undefined;
  env?: Record<string, string> | undefined;
  cwd?: string | undefined;
  user?: string | undefined;
  timeoutMs?: number | undefined;
  stdin?: string | undefined;
}

/**
 * The ExecRequest that `fields` describe (`where` names them in errors: body, frame). Throws
 * CORRAL_INVALID_ARGUMENT when both or neither of command and argv are given, or stdin is not
 * base64.
 */
export function toExecRequest(fields: ExecFields, where: string): ExecRequest {
  const { command, argv } = fields;
  if ((command === undefined) === (argv === undefined)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${where} needs exactly one of command (a shell command line) and argv (a program and its arguments)`,
    );
  }
  return {
    ...(command !== undefined && { command }),
    ...(argv !== undefined && { argv }),
    ...(fields.env !== undefined && { env: fields.env }),
    ...(fields.cwd !== undefined && { cwd: fields.cwd }),
    ...(fields.user !== undefined && { user: fields.user }),
    ...(fields.timeoutMs !== undefined && { timeoutMs: fields.timeoutMs }),
    ...(fields.stdin !== undefined && { stdin: decodeBase64(fields.stdin, `${where}/stdin`) }),
  };
}

/** `text` decoded from base64; CORRAL_INVALID_ARGUMENT naming `where` when it is not base64. */
export function decodeBase64(text: string, where: string): Buffer {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${where} is not base64 (A–Z, a–z, 0–9, +, /, padded with = to a multiple of 4 characters)`,
    );
  }
  return Buffer.from(text, "base64");
}

/** A command's outcome as the API answers it. */
export function execReply(outcome: ExecOutcome, durationMs: number) {
  const isText = isUtf8(outcome.stdout) && isUtf8(outcome.stderr);
  const encoding: BufferEncoding = isText ? "utf8" : "base64";
  return {
    exitCode: outcome.exitCode,
    stdout: outcome.stdout.toString(encoding),
    stderr: outcome.stderr.toString(encoding),
    encoding: isText ? ("utf8" as const) : ("base64" as const),
    isTimedOut: outcome.isTimedOut,
    isStdoutTruncated: outcome.isStdoutTruncated,
    isStderrTruncated: outcome.isStderrTruncated,
    durationMs,
  };
}

/** A signal's name as GuestOps takes it: upper case, without the SIG prefix (TERM, KILL). */
export function signalName(signal: string): string {
  return signal.toUpperCase().replace(/^SIG/, "");
}
