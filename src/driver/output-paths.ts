// Where `corral test` writes: its output folder and the JUnit report. corral never deletes what it
// did not write: it uses a folder it created (marked by a file of its own) or an empty one, and
// replaces only such a folder's contents. A run holds a pid lock in its folder, so two runs never
// share one.

import { constants } from "node:fs";
import { access, open, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { makeDirs, missingDirs } from "../host/make-dirs.ts";
import { PidLock } from "../host/pid-lock.ts";

/** The file that marks a folder as corral's output folder. */
export const OUTPUT_MARKER = ".corral-output";
const LOCK = ".corral-lock";
const MARKER_TEXT =
  "This folder holds the output of `corral test`; each run replaces its contents.\n";

export interface OutputDir extends AsyncDisposable {
  readonly path: string;
}

/**
 * Checks, changing nothing, that `dir` can be the output folder: missing (and creatable), empty,
 * or marked as corral's. Throws CORRAL_INVALID_ARGUMENT or CORRAL_CONFLICT saying what to do.
 */
export async function checkOutputDir(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) {
    await missingDirs(dir, "output folder");
    return;
  }
  if (!info.isDirectory()) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `output folder ${dir} is a file: give --output-dir a folder (a missing one is created)`,
    );
  }
  await access(dir, constants.W_OK | constants.X_OK).catch((error) => {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `output folder ${dir} is not writable: ${(error as Error).message}`,
      { cause: error },
    );
  });
  requireOwnOrEmpty(dir, await readdir(dir));
}

/**
 * Makes `dir` this run's output folder: creates it if missing, locks it against other runs,
 * marks it as corral's and removes what an earlier run left. Dispose the result to unlock.
 * Throws like `checkOutputDir`, and CORRAL_CONFLICT while another live run uses the folder.
 */
export async function claimOutputDir(dir: string): Promise<OutputDir> {
  await checkOutputDir(dir);
  await makeDirs(dir, "output folder");
  const lock = await PidLock.acquire(join(dir, LOCK), `output folder ${dir}`);
  try {
    const entries = (await readdir(dir)).filter((name) => name !== LOCK);
    requireOwnOrEmpty(dir, entries);
    if (!entries.includes(OUTPUT_MARKER)) await writeFile(join(dir, OUTPUT_MARKER), MARKER_TEXT);
    for (const name of entries) {
      if (name !== OUTPUT_MARKER) await rm(join(dir, name), { recursive: true, force: true });
    }
  } catch (error) {
    await lock.release();
    throw error;
  }
  return { path: dir, [Symbol.asyncDispose]: () => lock.release() };
}

/**
 * Checks, changing nothing, that `file` (described as `what`) can be written: not a folder, and
 * its folder exists or can be created. Throws CORRAL_INVALID_ARGUMENT.
 */
export async function checkOutputFile(file: string, what: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (info?.isDirectory()) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${what} ${file} is a folder: give a file path`,
    );
  }
  if (!info) await missingDirs(dirname(file), `the folder of the ${what}`);
}

/**
 * Creates the folder of `file` and checks that `file` can be written there, leaving no file
 * behind. Throws CORRAL_INVALID_ARGUMENT.
 */
export async function prepareOutputFile(file: string, what: string): Promise<void> {
  await checkOutputFile(file, what);
  await makeDirs(dirname(file), `the folder of the ${what}`);
  try {
    if (await stat(file).catch(() => undefined)) {
      await access(file, constants.W_OK);
    } else {
      await (await open(file, "wx")).close();
      await unlink(file);
    }
  } catch (error) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${what} ${file} cannot be written: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function requireOwnOrEmpty(dir: string, entries: readonly string[]): void {
  if (entries.length === 0 || entries.includes(OUTPUT_MARKER)) return;
  const shown = entries.slice(0, 5).join(", ") + (entries.length > 5 ? ", …" : "");
  throw new CorralError(
    ErrorCodes.CONFLICT,
    `output folder ${dir} is not empty and corral did not create it (it holds ${shown}); ` +
      "corral writes only into a new or empty folder, or one it created itself: give --output-dir a new folder",
  );
}
