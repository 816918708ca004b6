// A machine's state folder (disk overlay, sockets, records), held by one corral process at a time
// through a pid lock: two machines on one folder would share a writable disk. A folder corral
// makes itself is temporary (removed on release, and by the watchdog if corral dies); a folder the
// caller names is theirs and is only emptied when asked.

import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { runtimeDir } from "./paths.ts";
import { PidLock } from "./pid-lock.ts";
import { createWatchedDir, releaseDir } from "./watchdog.ts";

/** In a state folder: the pid of the corral process whose machine uses it. */
const LOCK_FILE = "corral.pid";

export interface ClaimStateFolderOptions {
  /** The machine's name, for messages and the temporary folder's name. */
  machine: string;
  /** The caller's folder; by default a new temporary one under the runtime folder. */
  dir?: string | undefined;
  /** Empty the caller's folder first (a fresh machine); keep it to reuse its disk. */
  empty: boolean;
  /** Leave a temporary folder in place on release (and if corral dies). */
  keep: boolean;
}

export class StateFolder {
  readonly dir: string;
  readonly #lock: PidLock;
  readonly #isTemporary: boolean;
  readonly #keep: boolean;

  private constructor(dir: string, lock: PidLock, isTemporary: boolean, keep: boolean) {
    this.dir = dir;
    this.#lock = lock;
    this.#isTemporary = isTemporary;
    this.#keep = keep;
  }

  /** Takes the folder for a machine; throws CORRAL_CONFLICT while another live process holds it. */
  static async claim(options: ClaimStateFolderOptions): Promise<StateFolder> {
    if (options.dir) {
      const dir = resolve(options.dir);
      await mkdir(dir, { recursive: true });
      const lock = await lockFolder(dir, options.machine);
      if (options.empty) await emptyBut(dir, LOCK_FILE);
      return new StateFolder(dir, lock, false, true);
    }
    const prefix = join(runtimeDir(), `corral-${options.machine.replace(/[^\w.-]/g, "_")}-`);
    const dir = options.keep ? await mkdtemp(prefix) : await createWatchedDir(prefix);
    return new StateFolder(dir, await lockFolder(dir, options.machine), true, options.keep);
  }

  /** Gives the folder up; removes it if corral made it and it is not to be kept. */
  async release(): Promise<void> {
    await this.#lock.release();
    if (!this.#isTemporary || this.#keep) return;
    await rm(this.dir, { recursive: true, force: true });
    releaseDir(this.dir);
  }
}

async function lockFolder(dir: string, machine: string): Promise<PidLock> {
  try {
    return await PidLock.acquire(join(dir, LOCK_FILE), `state folder ${dir}`);
  } catch (error) {
    if (!(error instanceof CorralError) || error.code !== ErrorCodes.CONFLICT) throw error;
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `${machine}: ${error.message}; two machines cannot share one writable disk: give each its own stateDir`,
      { machine, cause: error },
    );
  }
}

async function emptyBut(dir: string, keep: string): Promise<void> {
  for (const entry of await readdir(dir)) {
    if (entry !== keep) await rm(join(dir, entry), { recursive: true, force: true });
  }
}
