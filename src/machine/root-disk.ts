// The root disk a machine's profile asks for, made once in its state folder and kept with it:
// an overlay over its bootDisk or its image's disk grown to diskGiB, or an empty disk of
// diskGiB. Without these options the boot source makes its own (a start script's overlay).

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DiskImage, VmDrive } from "../backends/backend.ts";
import type { DriveOptions, MachineOptions } from "./machine-options.ts";
import type { MachinePlan } from "./machine-plan.ts";

/** The file name of the root disk in the state folder, whoever makes it. */
export const ROOT_DISK = "root.qcow2";

/** The root disk to boot from, made now unless it exists; undefined: the boot source's own. */
export async function prepareRootDisk(
  plan: MachinePlan,
  options: Pick<MachineOptions, "bootDisk" | "diskGiB">,
  stateDir: string,
): Promise<string | undefined> {
  const { bootDisk, diskGiB } = options;
  const { boot } = plan;
  if (boot.kind === "start-script") return undefined;
  if (bootDisk === undefined && diskGiB === undefined) return undefined;
  const path = join(stateDir, ROOT_DISK);
  if (existsSync(path)) return path;
  let base: DiskImage | undefined;
  if (bootDisk) base = { path: resolve(bootDisk.path), format: bootDisk.format };
  else if (boot.kind === "image") base = { path: join(boot.dir, "root.qcow2"), format: "qcow2" };
  await plan.backend.createDisk(path, {
    ...(base ? { base } : {}),
    ...(diskGiB !== undefined ? { sizeGiB: diskGiB } : {}),
  });
  return path;
}

/** A drive as the backend takes it: an absolute path, its format and read-only-ness decided. */
export function resolveDrive(drive: DriveOptions): VmDrive {
  return {
    path: resolve(drive.path),
    format: drive.format ?? "raw",
    media: drive.media,
    readOnly: drive.media === "cdrom" || (drive.readOnly ?? false),
  };
}
