// File helpers for Windows guests that qemu-ga's guest-file-* commands lack: make a folder with
// its parents, stat, remove, rename over, sha256. Scripts for powershellExec() and parsers of
// their output; paths are literal (-LiteralPath or .NET calls: no wildcards). Not verified on a
// real Windows guest. Get-Item's objects are FileInfo/DirectoryInfo (System.IO).

import { CorralError, ErrorCodes } from "../../errors.ts";
import { jsonRow } from "./json-row.ts";
import { psQuote } from "./powershell.ts";
import { outputError, parseJsonValue, parsePsDate } from "./powershell-output.ts";

export interface WindowsFileStat {
  /** The full path, as Windows spells it. */
  path: string;
  isDirectory: boolean;
  /** The file's length; 0 for a folder. */
  sizeBytes: number;
  /** PowerShell's mode string, e.g. `-a----` or `d-----`. */
  mode: string;
  /** FileAttributes as text, e.g. `Archive` or `ReadOnly, Hidden`. */
  attributes: string;
  /** Last write time, ISO 8601 UTC. */
  mtime: string | null;
}

// A drive-letter path (C:\…) or a UNC path (\\server\share\…); either slash.
const ABSOLUTE = /^(?:[A-Za-z]:[\\/]|[\\/]{2}[^\\/]+[\\/][^\\/]+)/;

/**
 * Throws CORRAL_INVALID_ARGUMENT unless `path` is an absolute Windows path (`C:\…` or
 * `\\server\share\…`) without NUL or a `..` component.
 */
export function validateWindowsPath(path: string): void {
  const problem = path.includes("\0")
    ? "holds a NUL character"
    : !ABSOLUTE.test(path)
      ? "is not absolute (C:\\… or \\\\server\\share\\…)"
      : path.split(/[\\/]/).includes("..")
        ? "has a '..' component"
        : undefined;
  if (problem) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${JSON.stringify(path)} ${problem}; give an absolute Windows path`,
    );
  }
}

/** The script that makes folder `path` and its missing parents (nothing when it exists). */
export function makeDirectoryScript(path: string): string {
  validateWindowsPath(path);
  return `[void][IO.Directory]::CreateDirectory(${psQuote(path)})`;
}

/** The script that prints `path`'s metadata as JSON (parseFileStat); a missing path is ObjectNotFound. */
export function statScript(path: string): string {
  validateWindowsPath(path);
  return [
    `$item = Get-Item -LiteralPath ${psQuote(path)} -Force`,
    "$stat = $item | Select-Object -Property FullName, PSIsContainer, @{ Name = 'Length'; Expression = { if ($_.PSIsContainer) { 0 } else { $_.Length } } }, Mode, @{ Name = 'Attributes'; Expression = { \"$($_.Attributes)\" } }, @{ Name = 'LastWriteTimeUtc'; Expression = { $_.LastWriteTimeUtc.ToString('o') } }",
    "ConvertTo-Json -InputObject $stat -Depth 2 -Compress",
  ].join("\n");
}

/** The metadata in statScript's output. */
export function parseFileStat(stdout: string): WindowsFileStat {
  const what = "Windows file stat";
  const row = jsonRow(parseJsonValue(stdout, what), what);
  return {
    path: row.string("FullName"),
    isDirectory: row.boolean("PSIsContainer"),
    sizeBytes: row.number("Length"),
    mode: row.string("Mode"),
    attributes: row.string("Attributes"),
    mtime: parsePsDate(row.value("LastWriteTimeUtc"), `${what}: LastWriteTimeUtc`),
  };
}

/**
 * The script that removes `path`: a file, or a folder with everything in it when `recursive`
 * (default false; a folder that is not empty fails without it). A missing path is ObjectNotFound.
 */
export function removeScript(path: string, options: { recursive?: boolean } = {}): string {
  validateWindowsPath(path);
  return `Remove-Item -LiteralPath ${psQuote(path)} -Force${options.recursive ? " -Recurse" : ""}`;
}

/**
 * The script that renames file `from` to `to`, replacing a file at `to` (how an upload to a
 * temporary name is put in place): File.Replace when `to` exists, File.Move otherwise, both
 * literal paths on one volume. A missing `from` is ObjectNotFound; a folder at `to` fails.
 */
export function moveFileScript(from: string, to: string): string {
  validateWindowsPath(from);
  validateWindowsPath(to);
  return [
    `$from = (Get-Item -LiteralPath ${psQuote(from)} -Force).FullName`,
    `$to = ${psQuote(to)}`,
    // PowerShell passes $null to a string parameter as ""; [NullString]::Value stays null.
    "if ([IO.File]::Exists($to)) { [IO.File]::Replace($from, $to, [NullString]::Value) } else { [IO.File]::Move($from, $to) }",
  ].join("\n");
}

/** The script that prints file `path`'s SHA-256 as JSON (parseSha256); missing is ObjectNotFound. */
export function sha256Script(path: string): string {
  validateWindowsPath(path);
  return `ConvertTo-Json -InputObject (Get-FileHash -LiteralPath ${psQuote(path)} -Algorithm SHA256).Hash -Compress`;
}

/** The lower-case hex SHA-256 in sha256Script's output (Get-FileHash prints upper case). */
export function parseSha256(stdout: string): string {
  const what = "Windows file sha256";
  const hash = parseJsonValue(stdout, what);
  if (typeof hash !== "string" || !/^[0-9A-Fa-f]{64}$/.test(hash)) {
    throw outputError(what, "expected 64 hex digits", stdout);
  }
  return hash.toLowerCase();
}
