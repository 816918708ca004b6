// Every error corral throws: one base class with a stable `code`, subclasses only where callers branch.

/** Stable error codes (`CORRAL_<AREA>_<WHAT>`); documented in docs/errors.md. */
export const ErrorCodes = {
  USAGE: "CORRAL_USAGE",
  HOST_TOOL_MISSING: "CORRAL_HOST_TOOL_MISSING",
  HOST_COMMAND_FAILED: "CORRAL_HOST_COMMAND_FAILED",
  IMAGE_UNKNOWN: "CORRAL_IMAGE_UNKNOWN",
  IMAGE_NOT_BUILT: "CORRAL_IMAGE_NOT_BUILT",
  IMAGE_BUILD_FAILED: "CORRAL_IMAGE_BUILD_FAILED",
  TIMEOUT: "CORRAL_TIMEOUT",
  ABORTED: "CORRAL_ABORTED",
  MACHINE_EXITED: "CORRAL_MACHINE_EXITED",
  MACHINE_START_FAILED: "CORRAL_MACHINE_START_FAILED",
  MACHINE_NOT_RUNNING: "CORRAL_MACHINE_NOT_RUNNING",
  UNSUPPORTED: "CORRAL_UNSUPPORTED",
  QMP_ERROR: "CORRAL_QMP_ERROR",
  QMP_CLOSED: "CORRAL_QMP_CLOSED",
  GUEST_CHANNEL_BROKEN: "CORRAL_GUEST_CHANNEL_BROKEN",
  GUEST_COMMAND_INVALID: "CORRAL_GUEST_COMMAND_INVALID",
  GUEST_COMMAND_FAILED: "CORRAL_GUEST_COMMAND_FAILED",
  UNIT_NOT_FOUND: "CORRAL_UNIT_NOT_FOUND",
  UNIT_STATE: "CORRAL_UNIT_STATE",
  CONDITION_FAILED: "CORRAL_CONDITION_FAILED",
  TEST_LOAD_FAILED: "CORRAL_TEST_LOAD_FAILED",
  SNAPSHOT_FAILED: "CORRAL_SNAPSHOT_FAILED",
  SNAPSHOT_INVALID: "CORRAL_SNAPSHOT_INVALID",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface CorralErrorOptions {
  cause?: unknown;
  /** The machine the operation concerned, when there is one. */
  machine?: string;
  /** Extra lines appended to the message: steps tried, last console lines. */
  details?: readonly string[];
}

/** Base class of every error corral throws on purpose. */
export class CorralError extends Error {
  readonly code: ErrorCode;
  readonly machine: string | undefined;
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options: CorralErrorOptions = {}) {
    const details = options.details ?? [];
    super(details.length > 0 ? `${message}\n${details.join("\n")}` : message, {
      cause: options.cause,
    });
    this.name = new.target.name;
    this.code = code;
    this.machine = options.machine;
    this.details = details;
  }
}

/** A wait or operation ran past its deadline. */
export class TimeoutError extends CorralError {
  constructor(message: string, options: CorralErrorOptions = {}) {
    super(ErrorCodes.TIMEOUT, message, options);
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends CorralError {
  constructor(message: string, options: CorralErrorOptions = {}) {
    super(ErrorCodes.ABORTED, message, options);
  }
}

/** The VMM process ended while an operation on its machine was pending. */
export class MachineExitedError extends CorralError {
  constructor(message: string, options: CorralErrorOptions = {}) {
    super(ErrorCodes.MACHINE_EXITED, message, options);
  }
}

/** The backend of a machine lacks the capability an operation needs. */
export class UnsupportedError extends CorralError {
  readonly backend: string;
  readonly capability: string;
  constructor(
    backend: string,
    capability: string,
    operation: string,
    options: CorralErrorOptions = {},
  ) {
    super(
      ErrorCodes.UNSUPPORTED,
      `${operation}: the ${backend} backend does not support ${capability}`,
      options,
    );
    this.backend = backend;
    this.capability = capability;
  }
}

/** A guest command exited with a status its caller did not accept; same fields as its result. */
export class GuestCommandError extends CorralError {
  readonly command: string;
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  constructor(
    message: string,
    result: { command: string; exitCode: number; stdout: string; stderr: string },
    options: CorralErrorOptions = {},
  ) {
    const output = [
      ...(result.stdout ? ["stdout:", ...indent(result.stdout)] : []),
      ...(result.stderr ? ["stderr:", ...indent(result.stderr)] : []),
    ];
    super(ErrorCodes.GUEST_COMMAND_FAILED, message, {
      ...options,
      details: [...output, ...(options.details ?? [])],
    });
    this.command = result.command;
    this.exitCode = result.exitCode;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
  }
}

function indent(text: string, maxLines = 20): string[] {
  const lines = text.replace(/\n$/, "").split("\n");
  const shown = lines.slice(-maxLines).map((line) => `  | ${line}`);
  return lines.length > maxLines
    ? [`  | … (${lines.length - maxLines} lines before)`, ...shown]
    : shown;
}

/** A program corral needs is not installed on the host. */
export class HostToolMissingError extends CorralError {
  readonly aptInstall: string;
  constructor(message: string, aptInstall: string, options: CorralErrorOptions = {}) {
    super(ErrorCodes.HOST_TOOL_MISSING, message, {
      ...options,
      details: [...(options.details ?? []), `Fix: ${aptInstall}`],
    });
    this.aptInstall = aptInstall;
  }
}

/** Formats the last console lines for the end of an error message. */
export function consoleTail(lines: readonly string[], count = 30): string[] {
  if (lines.length === 0) return ["Last console lines: (none)"];
  const tail = lines.slice(-count);
  return [`Last ${tail.length} console lines:`, ...tail.map((line) => `  | ${line}`)];
}
