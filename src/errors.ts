// Every error corral throws: one base class with a stable `code`, subclasses only where callers branch.

/**
 * Every error code, declared once: its HTTP status (what the REST API answers) and a one-line
 * meaning. docs/errors.md lists the same table; a unit test keeps them in step.
 */
export const ErrorTable = {
  INVALID_ARGUMENT: [
    400,
    "an argument, option or spec is invalid; the message says which and how to fix it",
  ],
  NOT_FOUND: [
    404,
    "something named does not exist: a VLAN, a machine, a guest user, a snapshot, a file",
  ],
  CONFLICT: [
    409,
    "the request conflicts with the current state: a folder or port in use, an operation not allowed now",
  ],
  HOST_TOOL_MISSING: [500, "a program corral needs is not installed on the host"],
  HOST_COMMAND_FAILED: [500, "a host program corral ran failed"],
  IMAGE_UNKNOWN: [404, "no recipe or built image of that name"],
  IMAGE_NOT_BUILT: [409, "the recipe exists but has no current build"],
  IMAGE_BUILD_FAILED: [500, "the image build failed"],
  TIMEOUT: [504, "an operation passed its deadline"],
  ABORTED: [499, "the caller aborted the operation"],
  MACHINE_EXITED: [409, "the VMM exited while an operation was pending"],
  MACHINE_START_FAILED: [500, "the VMM or its start script could not be run"],
  MACHINE_NOT_RUNNING: [409, "the operation needs a running VM"],
  UNSUPPORTED: [501, "the machine's backend lacks the capability"],
  BACKEND_UNAVAILABLE: [
    503,
    "the backend cannot run VMs on this host: its VMM is missing or it needs KVM and KVM is not usable",
  ],
  QMP_ERROR: [500, "QEMU answered a monitor command with an error"],
  QMP_CLOSED: [500, "the QMP connection closed while a command was pending"],
  VMM_API_ERROR: [
    500,
    "Firecracker or Cloud Hypervisor answered an API request with an error, or its API socket did not answer",
  ],
  GUEST_CHANNEL_BROKEN: [502, "the guest channel closed or is out of step"],
  GUEST_AGENT_ERROR: [502, "the guest agent (qemu-ga) answered a command with an error"],
  GUEST_COMMAND_INVALID: [400, "the command cannot be sent to a shell"],
  GUEST_COMMAND_FAILED: [422, "a guest command exited with a status its caller did not accept"],
  OUTPUT_TOO_LARGE: [500, "a guest command wrote more output than the caller's maxBuffer"],
  GUEST_OUTPUT_INVALID: [
    502,
    "a guest's reply to one of corral's own scripts is not what it prints",
  ],
  UNIT_NOT_FOUND: [404, "a systemd unit does not exist"],
  UNIT_STATE: [409, "a systemd unit is not in the required state"],
  CONDITION_FAILED: [500, "a test's polling condition threw or returned false"],
  TEST_LOAD_FAILED: [400, "a test file cannot be loaded"],
  SNAPSHOT_FAILED: [500, "saving a snapshot failed"],
  SNAPSHOT_INVALID: [409, "a snapshot cannot be used with this machine"],
  CHECKSUM_MISMATCH: [
    422,
    "a file's sha256 is not the one the request gave (X-Corral-Sha256); nothing was written",
  ],
  UPLOAD_TOO_LARGE: [413, "an upload is larger than the daemon's limits.maxUploadBytes"],
  UNAUTHORIZED: [401, "a request over TCP lacks the daemon's bearer token, or has a wrong one"],
  DAEMON_UNREACHABLE: [503, "no corral daemon answers at the socket or TCP address"],
  NETWORK_UNAVAILABLE: [
    503,
    "bridged networks need root (CAP_NET_ADMIN), ip, nft and dnsmasq; VMs use user-mode networking",
  ],
  INTERNAL: [500, "an unexpected error inside corral; the daemon's log has the details"],
} as const satisfies Record<string, readonly [number, string]>;

type ErrorName = keyof typeof ErrorTable;

/** Stable error codes (`CORRAL_<AREA>_<WHAT>`), by name. */
export const ErrorCodes = Object.fromEntries(
  Object.keys(ErrorTable).map((name) => [name, `CORRAL_${name}`]),
) as { readonly [Name in ErrorName]: `CORRAL_${Name}` };

export type ErrorCode = (typeof ErrorCodes)[ErrorName];

/** The HTTP status that an error with `code` maps to. */
export function httpStatus(code: ErrorCode): number {
  return ErrorTable[code.slice("CORRAL_".length) as ErrorName][0];
}

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

/** A value for an error message: JSON, with long strings cut and their length given. */
export function describeValue(value: unknown): string {
  if (typeof value === "string" && value.length > 40) {
    return `${JSON.stringify(`${value.slice(0, 40)}…`)} (${value.length} characters)`;
  }
  if (typeof value === "number" || value === undefined) return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
