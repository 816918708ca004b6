// A pid lock file: one live process holds it at a time; a lock left by a dead process (one killed
// by SIGKILL included) is taken over by the next process that asks for it.

import { randomBytes } from "node:crypto";
import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { CorralError, ErrorCodes } from "../errors.ts";

const ATTEMPTS = 5;

/** Whether process `pid` exists; a process of another user counts. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class PidLock implements AsyncDisposable {
  readonly path: string;
  readonly #token: string;

  private constructor(path: string, token: string) {
    this.path = path;
    this.#token = token;
  }

  /**
   * Takes the lock file at `path` for this process, taking over one whose process is dead.
   * Throws CORRAL_CONFLICT, naming `what` and the holder's pid, while a live process holds it.
   */
  static async acquire(path: string, what: string): Promise<PidLock> {
    const token = `${process.pid} ${randomBytes(8).toString("hex")}\n`;
    // Written aside and linked into place, so that a reader never sees a lock without its pid.
    const staged = `${path}.${randomBytes(6).toString("hex")}`;
    await writeFile(staged, token, { flag: "wx" });
    try {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        try {
          await link(staged, path);
          return new PidLock(path, token);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          // ENOENT: the holder, clearing its folder, removed the staged file.
          if (code !== "EEXIST" && code !== "ENOENT") throw error;
        }
        const holder = await holderOf(path);
        if (holder !== undefined && isAlive(holder)) throw inUse(what, holder, path);
        await removeStale(path, what);
      }
      throw inUse(what, await holderOf(path), path);
    } finally {
      await unlink(staged).catch(() => undefined);
    }
  }

  /** Gives the lock up (idempotent); a lock taken over meanwhile by another process is left alone. */
  async release(): Promise<void> {
    const content = await readFile(this.path, "utf8").catch(() => "");
    if (content === this.#token) await unlink(this.path).catch(() => undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/** The pid in the lock file; undefined when there is no file or no pid in it. */
async function holderOf(path: string): Promise<number | undefined> {
  const content = await readFile(path, "utf8").catch(() => "");
  const pid = Number.parseInt(content, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Removes a stale lock file. It is moved aside first and checked again there: if a live process
 * took the lock over in between, its file is put back.
 */
async function removeStale(path: string, what: string): Promise<void> {
  const aside = `${path}.stale-${randomBytes(6).toString("hex")}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const holder = await holderOf(aside);
  if (holder !== undefined && isAlive(holder)) {
    await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    throw inUse(what, holder, path);
  }
  await unlink(aside).catch(() => undefined);
}

function inUse(what: string, pid: number | undefined, path: string): CorralError {
  return new CorralError(
    ErrorCodes.CONFLICT,
    `${what} is in use by another corral run (pid ${pid ?? "unknown"}): wait for it to end or use another folder` +
      ` (if no corral process has that pid, remove ${path})`,
  );
}
