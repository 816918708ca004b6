// A user's command in a Windows guest, as a script for powershellExec(): a working folder and
// variables set in the script (guest-exec has neither on released agents), the command's exit
// status passed through, a missing program exit 127 as on POSIX. Not verified on a real Windows
// guest.

import { CorralError, ErrorCodes } from "../../errors.ts";
import { validateWindowsPath } from "./files.ts";
import { type PowerShellExecArguments, powershellExec, psQuote } from "./powershell.ts";

export interface WindowsCommand {
  /**
   * A program and its arguments, run with PowerShell's call operator (`& 'prog' 'arg'…`): the
   * program is found as PowerShell finds commands (PATH, cmdlets, aliases). Windows PowerShell
   * 5.1 drops empty arguments and passes arguments holding `"` without escaping them (its legacy
   * native argument passing), so such arguments may reach a program altered.
   */
  argv?: readonly string[];
  /** PowerShell script text, run as a script block (give `argv` or `script`, not both). */
  script?: string;
  /** The working folder: an absolute Windows path (Set-Location -LiteralPath). */
  cwd?: string;
  /** Variables added to the environment the command inherits (names: letters, digits, `_`). */
  env?: Readonly<Record<string, string>>;
}

/** The exit status for a program that does not exist, as POSIX shells report it. */
export const EXIT_NOT_FOUND = 127;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The `guest-exec` arguments that run `command` (runCommandScript), without the prelude's error
 * trap: the command's errors are PowerShell's own, as a user expects from a shell.
 */
export function runCommandExec(command: WindowsCommand): PowerShellExecArguments {
  return powershellExec(runCommandScript(command), { trapErrors: false });
}

/**
 * The script that runs `command` and exits with its status: a program's exit code, else 1 when
 * PowerShell reported an error, else 0; 127 when the command is not found. A missing `cwd`
 * fails before the command runs, with the prelude's JSON error (ObjectNotFound). Throws
 * CORRAL_INVALID_ARGUMENT for an empty or doubly given command, a relative `cwd` or a bad
 * variable name. Run it with runCommandExec.
 */
export function runCommandScript(command: WindowsCommand): string {
  const invalid = (problem: string) =>
    new CorralError(ErrorCodes.INVALID_ARGUMENT, `Windows command: ${problem}`);
  if ((command.argv === undefined) === (command.script === undefined)) {
    throw invalid("give argv or script, and only one of them");
  }
  if (command.argv?.length === 0 || command.argv?.[0] === "") {
    throw invalid("argv needs a program");
  }
  const lines: string[] = [];
  if (command.cwd !== undefined) {
    validateWindowsPath(command.cwd);
    lines.push(
      `try { Set-Location -LiteralPath ${psQuote(command.cwd)} } catch { Write-CorralError $_; exit 1 }`,
    );
  }
  for (const [name, value] of Object.entries(command.env ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw invalid(`${JSON.stringify(name)} is not a variable name (letters, digits and _)`);
    }
    lines.push(`$env:${name} = ${psQuote(value)}`);
  }
  const call = command.argv
    ? `& ${command.argv.map(psQuote).join(" ")}`
    : `& ([ScriptBlock]::Create(${psQuote(command.script ?? "")}))`;
  // The user's command gets PowerShell's default error handling: with 'Stop', Windows
  // PowerShell 5.1 would stop at the first line a program writes to stderr.
  lines.push(
    "$ErrorActionPreference = 'Continue'",
    "$global:LASTEXITCODE = 0",
    "try {",
    `  ${call}`,
    "  $succeeded = $?",
    "} catch [System.Management.Automation.CommandNotFoundException] {",
    "  [Console]::Error.WriteLine($_.Exception.Message)",
    `  exit ${EXIT_NOT_FOUND}`,
    "}",
    "if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }",
    "if (-not $succeeded) { exit 1 }",
    "exit 0",
  );
  return lines.join("\n");
}
