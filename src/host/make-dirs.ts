// Checking that a folder can be created, and creating it one level at a time: Node's recursive
// mkdir spins forever where the kernel answers ENOENT under a folder that exists (/proc/nope).

import { constants } from "node:fs";
import { access, mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";

/**
 * The folders missing on the way to `dir`, outermost first, after checking that the nearest one
 * that exists is a writable folder. Throws CORRAL_INVALID_ARGUMENT naming `what` when it is not.
 */
export async function missingDirs(dir: string, what: string): Promise<string[]> {
  const missing: string[] = [];
  let path = resolve(dir);
  for (;;) {
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ENOTDIR") return undefined;
      throw cannotCreate(what, dir, error);
    });
    if (info) {
      if (!info.isDirectory()) {
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          `${what} ${dir} cannot be created: ${path} is a file, not a folder`,
        );
      }
      await access(path, constants.W_OK | constants.X_OK).catch((error) => {
        throw cannotCreate(what, dir, error);
      });
      return missing;
    }
    missing.unshift(path);
    path = dirname(path);
  }
}

/**
 * Creates `dir` and its missing parents, each with `mode` (less the umask; folders that exist keep
 * theirs); returns the folders it created, outermost first. Throws CORRAL_INVALID_ARGUMENT naming
 * `what` when one cannot be created.
 */
export async function makeDirs(dir: string, what: string, mode = 0o777): Promise<string[]> {
  const missing = await missingDirs(dir, what);
  for (const path of missing) {
    await mkdir(path, { mode }).catch((error: NodeJS.ErrnoException) => {
      // Created meanwhile by someone else: fine, as long as it is a folder.
      if (error.code === "EEXIST") {
        return stat(path).then((info) => {
          if (!info.isDirectory()) throw cannotCreate(what, dir, error);
        });
      }
      throw cannotCreate(what, dir, error);
    });
  }
  return missing;
}

function cannotCreate(what: string, dir: string, error: NodeJS.ErrnoException): CorralError {
  const reasons: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "the file system does not allow it",
    EROFS: "the file system is read-only",
    ENOENT: "the file system does not allow new folders there",
    ENOTDIR: "a part of the path is a file",
    ENOSPC: "no space left on the device",
  };
  const reason = reasons[error.code ?? ""] ?? error.message;
  return new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `${what} ${dir} cannot be created: ${reason} (${error.path ?? dir}); pick another path`,
    { cause: error },
  );
}
