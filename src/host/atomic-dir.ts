// Writing a folder in one go: its files go into a hidden partial folder beside it, named after
// the folder and the writer's pid and watched by the watchdog while it is written, then renamed
// into place. A reader never sees half a folder; a killed writer leaves nothing lasting.

import { randomBytes } from "node:crypto";
import { access, mkdir, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { makeDirs } from "./make-dirs.ts";
import { isAlive } from "./pid-lock.ts";
import { releaseDir, watchDir } from "./watchdog.ts";

const PARTIAL = /^\.(.+)\.partial-[0-9a-f]+-(\d+)$/;

/**
 * Creates folder `target` with what `fill(partial)` writes into `partial`, and returns what
 * `fill` returns. Throws CORRAL_CONFLICT when `target` exists, before or (written meanwhile by
 * another process) after `fill`; `fill`'s own error otherwise. Nothing is left behind on failure.
 */
export async function writeDirAtomically<T>(
  target: string,
  fill: (partial: string) => Promise<T>,
): Promise<T> {
  if (target.includes("\n")) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `folder ${JSON.stringify(target)} has a newline in its name`,
    );
  }
  if (await exists(target)) throw taken(target);
  const parent = dirname(target);
  await makeDirs(parent, "folder");
  await removeStalePartials(parent, basename(target));
  const partial = join(
    parent,
    `.${basename(target)}.partial-${randomBytes(6).toString("hex")}-${process.pid}`,
  );
  // Watched before it exists, so that no moment of its life is unwatched.
  watchDir(partial);
  try {
    await mkdir(partial);
    const result = await fill(partial);
    await rename(partial, target).catch((error: NodeJS.ErrnoException) => {
      // A folder that is not empty cannot be replaced by rename(2): someone else's.
      if (error.code === "ENOTEMPTY" || error.code === "EEXIST") throw taken(target, true);
      throw error;
    });
    return result;
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  } finally {
    releaseDir(partial);
  }
}

/**
 * Removes the partial folders in `parent` whose writer process is dead (of `name` only, when
 * given); returns their names. Those of live writers are left alone.
 */
export async function removeStalePartials(parent: string, name?: string): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await readdir(parent).catch(() => [])) {
    const match = PARTIAL.exec(entry);
    if (!match || (name !== undefined && match[1] !== name)) continue;
    if (isAlive(Number(match[2]))) continue;
    await rm(join(parent, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

function taken(target: string, meanwhile = false): CorralError {
  return new CorralError(
    ErrorCodes.CONFLICT,
    meanwhile
      ? `folder ${target} was created by another process while this one was being written; this one was dropped`
      : `folder ${target} already exists; remove it or pick another`,
  );
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
