// The boot snapshot cache behind `corral test --reuse-boot`: the state of a machine right after
// boot, keyed by what the machine runs (image, backend and its version, config, kernel parameters), so that
// the next run of a test with the same machines restores instead of booting.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { removeStalePartials } from "../host/atomic-dir.ts";
import { snapshotsDir } from "../host/paths.ts";
import type { Machine } from "../machine/machine.ts";
import type { MachineOptions } from "../machine/machine-options.ts";
import { machineIdentity, planMachine } from "../machine/machine-plan.ts";
import { readManifest, type SnapshotManifest } from "../machine/snapshot-manifest.ts";
import { checkMachineName } from "../network/addressing.ts";

/** Where the boot snapshot of a machine with these options lives (it may not exist yet). */
export async function bootSnapshotDir(name: string, options: MachineOptions): Promise<string> {
  const plan = await planMachine(options, "finding a boot snapshot");
  const identity = await machineIdentity(plan, options);
  const key = createHash("sha256")
    .update(
      JSON.stringify({
        identity,
        env: options.env ?? {},
        kernelParams: options.kernelParams ?? [],
      }),
    )
    .digest("hex")
    .slice(0, 16);
  return join(snapshotsDir(), `${name}-${key}`);
}

export interface CachedSnapshot {
  name: string;
  dir: string;
  sizeBytes: number;
  manifest: SnapshotManifest | undefined;
}

/** Every entry of the boot snapshot cache; unreadable ones have no manifest. */
export async function listBootSnapshots(): Promise<CachedSnapshot[]> {
  const names = await readdir(snapshotsDir()).catch(() => []);
  const entries: CachedSnapshot[] = [];
  for (const name of names.filter((entry) => !entry.startsWith(".")).sort()) {
    const dir = join(snapshotsDir(), name);
    const manifest = await readManifest(dir).catch(() => undefined);
    let sizeBytes = 0;
    for (const file of await readdir(dir).catch(() => [])) {
      // On disk: a snapshot's memory file is as big as the guest's RAM but mostly holes.
      sizeBytes += ((await stat(join(dir, file)).catch(() => undefined))?.blocks ?? 0) * 512;
    }
    entries.push({ name, dir, sizeBytes, manifest });
  }
  return entries;
}

/**
 * Saves `machine`, booted, as the boot snapshot `dir`. Returns false when another run saved it
 * first (two first runs of one test at once): saving is an optimisation, so theirs is kept and
 * this machine goes on. Removes the partial snapshots that killed runs left in the cache.
 */
export async function saveBootSnapshot(machine: Machine, dir: string): Promise<boolean> {
  await removeStalePartials(snapshotsDir());
  try {
    await machine.snapshot(dir);
    return true;
  } catch (error) {
    const isTheirs =
      error instanceof CorralError && error.code === ErrorCodes.CONFLICT && existsSync(dir);
    if (isTheirs) return false;
    throw error;
  }
}

/**
 * Removes the entries whose name is `name` or starts with `name-` (a machine name); without a
 * name, every entry and the partial snapshots that killed runs left. Returns the names removed.
 * Throws CORRAL_INVALID_ARGUMENT for a name that is neither a machine name nor an entry's name.
 */
export async function removeBootSnapshots(name?: string): Promise<string[]> {
  if (name !== undefined) checkSnapshotName(name);
  const removed: string[] = [];
  for (const entry of await listBootSnapshots()) {
    if (name && entry.name !== name && !entry.name.startsWith(`${name}-`)) continue;
    await rm(entry.dir, { recursive: true, force: true });
    removed.push(entry.name);
  }
  if (name === undefined) removed.push(...(await removeStalePartials(snapshotsDir())));
  return removed;
}

/** A machine name, or a cache entry's name: `<machine>-<key>`. */
function checkSnapshotName(name: string): void {
  const machine = /^(.+)-[0-9a-f]{16}$/.exec(name)?.[1];
  try {
    checkMachineName(machine ?? name);
  } catch {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${JSON.stringify(name)} is neither a machine name (letters, digits and "-", starting with a letter, at most 63) nor a snapshot name from \`corral snapshot list\``,
    );
  }
}
