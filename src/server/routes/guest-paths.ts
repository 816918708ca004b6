// The rules a guest path must follow before any request reaches the guest: absolute, no NUL, no
// `..` segment; and, once the guest's OS is known, absolute in its own style.

import { CorralError, ErrorCodes } from "../../errors.ts";

/** `C:\…` (or `C:/…`), or a share: `\\server\share\…`. */
const WINDOWS_ABSOLUTE = /^([A-Za-z]:[\\/]|\\\\[^\\/]+[\\/][^\\/]+)/;

/**
 * Throws CORRAL_INVALID_ARGUMENT unless `path` is absolute (`/…`, or `C:\…` or
 * `\\server\share\…` for a Windows guest), holds no NUL byte and no `..` segment. Without
 * `os` either style passes.
 */
export function requireGuestPath(path: string, os?: "linux" | "windows"): string {
  const problem = pathProblem(path, os);
  if (problem !== undefined) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `querystring/path ${JSON.stringify(path)} ${problem}`,
    );
  }
  return path;
}

function pathProblem(path: string, os: "linux" | "windows" | undefined): string | undefined {
  if (path.includes("\0")) return "holds a NUL byte";
  const isPosix = path.startsWith("/");
  const isWindows = WINDOWS_ABSOLUTE.test(path);
  if (!isPosix && !isWindows) {
    return "is not absolute: give the whole path from / (or from a drive, C:\\…, on Windows)";
  }
  if (os === "linux" && !isPosix) return "is not absolute for a Linux guest: start it with /";
  if (os === "windows" && !isWindows) {
    return "is not absolute for a Windows guest: start it with a drive (C:\\…)";
  }
  const separators = isWindows || os === "windows" ? /[\\/]/ : /\//;
  if (path.split(separators).includes("..")) {
    return "has a '..' segment: give the path without it";
  }
  return undefined;
}
