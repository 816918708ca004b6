// The boot snapshot cache behind `corral test --reuse-boot`: the state of a machine right after
// boot, keyed by what the machine runs (image, QEMU version, config, kernel parameters), so that
// the next run of a test with the same machines restores instead of booting.

import { createHash } from "node:crypto";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { resolveAccelerator } from "../host/accelerator.ts";
import { snapshotsDir } from "../host/paths.ts";
import { defaultProbeKernel, findImage } from "../images/image-cache.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import type { MachineOptions } from "../machine/machine-options.ts";
import { readManifest, type SnapshotManifest } from "../machine/snapshot-manifest.ts";
import { machineIdentity } from "../machine/snapshots.ts";

/** Where the boot snapshot of a machine with these options lives (it may not exist yet). */
export async function bootSnapshotDir(name: string, options: MachineOptions): Promise<string> {
  const probeKernel = options.startScript
    ? await defaultProbeKernel()
    : join((await findImage(options.image ?? DEFAULT_RECIPE)).dir, "vmlinuz");
  const { accelerator } = await resolveAccelerator({ forced: options.accel, probeKernel });
  const identity = await machineIdentity(options, accelerator);
  const key = createHash("sha256")
    .update(JSON.stringify({ identity, env: options.env ?? {} }))
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
      sizeBytes += (await stat(join(dir, file)).catch(() => undefined))?.size ?? 0;
    }
    entries.push({ name, dir, sizeBytes, manifest });
  }
  return entries;
}

/** Removes the entries whose name is `name` or starts with `name-` (a machine name); all without one. */
export async function removeBootSnapshots(name?: string): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await listBootSnapshots()) {
    if (name && entry.name !== name && !entry.name.startsWith(`${name}-`)) continue;
    await rm(entry.dir, { recursive: true, force: true });
    removed.push(entry.name);
  }
  return removed;
}
