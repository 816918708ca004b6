// Reading what a powershellExec() script printed: ConvertTo-Json's output in its Windows
// PowerShell 5.1 forms, and the prelude's error line. Not verified on a real Windows guest.

import { CorralError, ErrorCodes, GuestCommandError } from "../../errors.ts";

/** What a Windows PowerShell script run through guest-exec gave back (stdout decoded as UTF-8). */
export interface PowerShellResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A terminating PowerShell error as the prelude's trap reports it. */
export interface PowerShellError {
  message: string;
  /** The .NET exception type, e.g. `Microsoft.PowerShell.Commands.ServiceCommandException`. */
  type: string;
  /** ErrorCategory as text, e.g. `ObjectNotFound`, `PermissionDenied`, `InvalidOperation`. */
  category: string;
  /** FullyQualifiedErrorId, e.g. `NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand`. */
  errorId: string;
}

/**
 * The JSON a script printed, as a list: ConvertTo-Json writes one object for a pipeline of one
 * and nothing at all for an empty one, so `{…}` becomes `[{…}]` and empty output `[]`. Throws
 * CORRAL_GUEST_OUTPUT_INVALID when it is not JSON.
 */
export function parseJsonList(stdout: string, what: string): unknown[] {
  return asList(parseJson(stdout, what, []));
}

/**
 * A JSON value that PowerShell may have printed as one item, a list or null, as a list. Windows
 * PowerShell 5.1 also prints an array that reached it wrapped in a PSObject as
 * `{"value":[…],"Count":n}` (the extended type data of System.Array): that is a list too.
 */
export function asList(value: unknown): unknown[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value;
  if (isWrappedArray(value)) return value.value;
  return [value];
}

function isWrappedArray(value: unknown): value is { value: unknown[]; Count: number } {
  if (typeof value !== "object" || value === null) return false;
  const keys = Object.keys(value).sort();
  const wrapped = value as { value?: unknown; Count?: unknown };
  return (
    keys.length === 2 &&
    keys[0] === "Count" &&
    keys[1] === "value" &&
    Array.isArray(wrapped.value) &&
    wrapped.Count === wrapped.value.length
  );
}

/** The one JSON value a script printed. Throws CORRAL_GUEST_OUTPUT_INVALID when it printed none. */
export function parseJsonValue(stdout: string, what: string): unknown {
  return parseJson(stdout, what, undefined);
}

function parseJson(stdout: string, what: string, ifEmpty: unknown): unknown {
  const text = stdout.replace(/^\uFEFF/, "").trim();
  if (text === "") {
    if (ifEmpty !== undefined) return ifEmpty;
    throw outputError(what, "the guest printed nothing", stdout);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw outputError(what, `the guest's output is not JSON (${(error as Error).message})`, stdout);
  }
}

/** CORRAL_GUEST_OUTPUT_INVALID for `what`, with the start of the output that did not fit. */
export function outputError(what: string, problem: string, output: string): CorralError {
  const shown = output.length > 200 ? `${output.slice(0, 200)}…` : output;
  return new CorralError(ErrorCodes.GUEST_OUTPUT_INVALID, `${what}: ${problem}`, {
    details: [`output: ${JSON.stringify(shown)}`],
  });
}

// Windows PowerShell 5.1 writes a DateTime as "\/Date(<ms since 1970>)\/", with an offset such
// as +0100 for local times (ConvertTo-Json, JavaScriptSerializer's form); PowerShell 7 and the
// scripts here write ISO 8601.
const MS_DATE = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/;

/**
 * An ISO 8601 UTC string (`2024-05-01T12:00:00.000Z`) for a date as PowerShell printed it:
 * ISO 8601 with any number of fraction digits, or 5.1's `/Date(ms)/`; null for null or "".
 * Throws CORRAL_GUEST_OUTPUT_INVALID for anything else.
 */
export function parsePsDate(value: unknown, what: string): string | null {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "string") {
    const ms = MS_DATE.exec(value);
    // The offset only says how the time was shown; the number is UTC milliseconds.
    const time = ms ? Number(ms[1]) : Date.parse(value);
    if (Number.isFinite(time)) return new Date(time).toISOString();
  }
  throw outputError(what, `${JSON.stringify(value)} is not a date`, JSON.stringify(value));
}

/**
 * The error the prelude's trap wrote to stderr, if it wrote one; otherwise the text of a CLIXML
 * error stream (`#< CLIXML`, what powershell.exe writes for errors when its output is
 * redirected and the error reached PowerShell's own error stream), if stderr holds one.
 */
export function parsePowerShellError(stderr: string): PowerShellError | undefined {
  for (const line of stderr.split(/\r?\n/).reverse()) {
    if (!line.startsWith('{"corralError":')) continue;
    try {
      const { corralError } = JSON.parse(line) as { corralError: Partial<PowerShellError> };
      return {
        message: String(corralError.message ?? ""),
        type: String(corralError.type ?? ""),
        category: String(corralError.category ?? ""),
        errorId: String(corralError.errorId ?? ""),
      };
    } catch {}
  }
  const clixml = clixmlErrorText(stderr);
  return clixml === undefined
    ? undefined
    : { message: clixml, type: "", category: "", errorId: "" };
}

function clixmlErrorText(stderr: string): string | undefined {
  if (!stderr.includes("#< CLIXML")) return undefined;
  const parts = [...stderr.matchAll(/<S S="Error">([^<]*)<\/S>/g)].map((match) =>
    decodeClixml(match[1] ?? ""),
  );
  return parts.length > 0 ? parts.join("").trim() : undefined;
}

/** CLIXML text: XML entities, and characters escaped as `_xHHHH_`. */
function decodeClixml(text: string): string {
  return text
    .replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    )
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}

/**
 * Throws unless `result` is a success (exit 0): CORRAL_NOT_FOUND when PowerShell's error is of
 * the ObjectNotFound category (no such service, process, file), else a GuestCommandError
 * (CORRAL_GUEST_COMMAND_FAILED) carrying the PowerShell error's message and the output.
 * `operation` names what was attempted, e.g. `start service "Spooler"`.
 */
export function checkPowerShellResult(operation: string, result: PowerShellResult): void {
  if (result.exitCode === 0) return;
  const error = parsePowerShellError(result.stderr);
  const because = error ? `: ${error.message}` : ` (exit status ${result.exitCode})`;
  if (error?.category === "ObjectNotFound") {
    throw new CorralError(ErrorCodes.NOT_FOUND, `${operation}${because}`, {
      details: [`PowerShell error: ${error.errorId}`],
    });
  }
  throw new GuestCommandError(
    `${operation} failed in the Windows guest${because}`,
    { command: operation, ...result },
    error ? { details: [`PowerShell error: ${error.errorId} (${error.category})`] } : {},
  );
}
