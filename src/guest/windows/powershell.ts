// PowerShell scripts as qemu-ga `guest-exec` arguments for Windows guests: the script travels
// UTF-16LE base64 in -EncodedCommand (no quoting through the Windows command line), after a prelude
// that makes its output UTF-8 and its failures one JSON line on stderr. Not verified on a real
// Windows guest.

import { CorralError, ErrorCodes } from "../../errors.ts";

/** The `guest-exec` arguments, spelt as the agent takes them (qapi `guest-exec`). */
export interface PowerShellExecArguments {
  path: "powershell.exe";
  arg: string[];
  "capture-output": true;
}

/**
 * The longest command line Windows' CreateProcess takes, in UTF-16 code units
 * (https://learn.microsoft.com/en-us/windows/win32/api/processthreadsapi/nf-processthreadsapi-createprocessw).
 */
export const MAX_COMMAND_LINE_CHARS = 32_767;

/** The fixed arguments before -EncodedCommand's value (powershell.exe's about_PowerShell_exe). */
export const POWERSHELL_ARGS = [
  "-NoProfile",
  "-NonInteractive",
  "-ExecutionPolicy",
  "Bypass",
  "-EncodedCommand",
] as const;

/**
 * Runs before every script. UTF-8 out: a Windows console otherwise writes in its OEM code page
 * (research/manager.md §4). Progress records off: with redirected output powershell.exe can
 * serialise them to stderr as CLIXML. Errors stop the script. Write-CorralError writes an error
 * record as one `{"corralError":…}` line on stderr, which parsePowerShellError reads.
 */
export const POWERSHELL_PRELUDE = [
  "$ErrorActionPreference = 'Stop'",
  "$ProgressPreference = 'SilentlyContinue'",
  "[Console]::OutputEncoding = [Text.UTF8Encoding]::new($false)",
  "$OutputEncoding = [Console]::OutputEncoding",
  "function Write-CorralError($record) {",
  '  $fields = [ordered]@{ message = $record.Exception.Message; type = $record.Exception.GetType().FullName; category = "$($record.CategoryInfo.Category)"; errorId = "$($record.FullyQualifiedErrorId)" }',
  "  [Console]::Error.WriteLine((ConvertTo-Json -InputObject @{ corralError = $fields } -Compress))",
  "}",
].join("\n");

/**
 * Follows the prelude unless asked not to: any error the script does not catch itself is
 * written by Write-CorralError and ends the script with exit status 1. (A trap also catches
 * errors in the script blocks a script calls, so a user's own script runs without it.)
 */
export const POWERSHELL_ERROR_TRAP = "trap { Write-CorralError $_; exit 1 }";

export interface PowerShellExecOptions {
  /** Follow the prelude with POWERSHELL_ERROR_TRAP (default true). */
  trapErrors?: boolean;
}

/**
 * The `guest-exec` arguments that run `script` (after POWERSHELL_PRELUDE and, by default,
 * POWERSHELL_ERROR_TRAP) in Windows PowerShell 5.1. Output is captured (the agent returns it
 * base64 once the program has exited). Environment variables belong in the script
 * (`$env:NAME = …`): guest-exec's `env` replaces the whole environment. Throws
 * CORRAL_INVALID_ARGUMENT when the encoded command line would pass Windows' 32,767-character
 * limit (a script of about 12,000 characters).
 */
export function powershellExec(
  script: string,
  options: PowerShellExecOptions = {},
): PowerShellExecArguments {
  const encoded = encodePowerShellCommand(`${preamble(options)}${script}`);
  const arg = [...POWERSHELL_ARGS, encoded];
  const commandLineChars = ["powershell.exe", ...arg].join(" ").length;
  if (commandLineChars > MAX_COMMAND_LINE_CHARS) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `a PowerShell script of ${script.length} characters makes a command line of ${commandLineChars} characters once encoded, more than the ${MAX_COMMAND_LINE_CHARS} Windows takes; send long input as a file (guest-file-write) and run that`,
    );
  }
  return { path: "powershell.exe", arg, "capture-output": true };
}

function preamble(options: PowerShellExecOptions): string {
  const trap = options.trapErrors === false ? "" : `${POWERSHELL_ERROR_TRAP}\n`;
  return `${POWERSHELL_PRELUDE}\n${trap}`;
}

/** `text` as -EncodedCommand takes it: UTF-16LE, base64. */
export function encodePowerShellCommand(text: string): string {
  return Buffer.from(text, "utf16le").toString("base64");
}

/** The script inside an -EncodedCommand value (tests and logs read the exact payload with it). */
export function decodePowerShellCommand(encoded: string): string {
  return Buffer.from(encoded, "base64").toString("utf16le");
}

/**
 * The script that `args` (from powershellExec) runs, without the prelude and the trap; tests
 * and logs read the exact payload with it. Throws CORRAL_INVALID_ARGUMENT when they are not
 * powershellExec's.
 */
export function scriptOf(args: PowerShellExecArguments): string {
  const encoded = args.arg[POWERSHELL_ARGS.length];
  const text = encoded === undefined ? "" : decodePowerShellCommand(encoded);
  for (const prefix of [preamble({}), preamble({ trapErrors: false })]) {
    if (text.startsWith(prefix)) return text.slice(prefix.length);
  }
  throw new CorralError(ErrorCodes.INVALID_ARGUMENT, "not a powershellExec() payload");
}

// PowerShell's tokenizer takes the typographic single quotes as quotes too (CharExtensions
// IsSingleQuote in PowerShell's source: U+2018, U+2019, U+201A, U+201B).
const SINGLE_QUOTES = /['\u2018\u2019\u201A\u201B]/g;

/**
 * `value` as a PowerShell single-quoted string literal: nothing inside is expanded, each quote
 * character (the ASCII one and its typographic variants) is doubled. Throws
 * CORRAL_INVALID_ARGUMENT for a NUL character, which no Windows string argument can hold.
 */
export function psQuote(value: string): string {
  if (value.includes("\0")) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${JSON.stringify(value)} holds a NUL character, which a PowerShell string cannot pass on`,
    );
  }
  return `'${value.replace(SINGLE_QUOTES, (quote) => quote + quote)}'`;
}
