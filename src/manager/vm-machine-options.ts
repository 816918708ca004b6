// A managed VM as Machine options: a persistent machine whose state folder is the VM's own, kept
// across starts, with the spec's profile (machine type, firmware, disks, drives), its resize
// headroom and its cloud-init seed. This is the one place that maps the spec onto Machine.

import { join } from "node:path";
import type { DriveOptions, MachineOptions } from "../machine/machine-options.ts";
import { MAX_MEMORY_MIB, validateMachineOptions } from "../machine/validate-options.ts";
import { SEED_FILE } from "./cloud-init-seed.ts";
import type { ManagedSpec } from "./vm-spec.ts";

export interface MachineTarget {
  name: string;
  stateDir: string;
  spec: ManagedSpec;
}

/**
 * The options of the Machine that runs `vm`, checked as Machine checks them. With
 * `isSnapshotStart` (a clone's first start, a roll-back) the disk is the snapshot's: no
 * `diskGiB`. Throws CORRAL_INVALID_ARGUMENT naming what Machine refuses (a microvm without a
 * corral image, kernel parameters for a disk its firmware boots, an empty disk without a size…).
 */
export function machineOptionsFor(
  vm: MachineTarget,
  { isSnapshotStart = false }: { isSnapshotStart?: boolean } = {},
): MachineOptions {
  const { spec } = vm;
  const drives: DriveOptions[] = spec.drives.map(({ path, media, readOnly }) => ({
    path,
    media,
    ...(readOnly !== undefined ? { readOnly } : {}),
  }));
  if (spec.cloudInit) drives.push(seedDrive(vm));
  const options: MachineOptions = {
    name: vm.name,
    ownership: "persistent",
    // Every managed VM gets qemu-ga's port: the guest channel when it has no backdoor shell.
    guestAgent: true,
    stateDir: vm.stateDir,
    keepState: true,
    backend: spec.backend,
    // null: no corral image; the firmware boots the imported disk, or an empty one.
    image: spec.cacheImage,
    ...(spec.bootDisk ? { bootDisk: spec.bootDisk } : {}),
    machineType: spec.machineType,
    firmware: spec.firmware,
    hypervEnlightenments: spec.hypervEnlightenments,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    ...headroom(spec),
    ...(spec.diskGiB !== null && !isSnapshotStart ? { diskGiB: spec.diskGiB } : {}),
    ...(drives.length > 0 ? { drives } : {}),
    ...(spec.kernelParams.length > 0 ? { kernelParams: spec.kernelParams } : {}),
    ...(spec.rootDisk ? { rootDisk: spec.rootDisk } : {}),
  };
  validateMachineOptions(options);
  return options;
}

/** The VM's cloud-init seed (cloud-init-seed.ts writes it into the VM's folder when it is made). */
export function seedPath(vm: Pick<MachineTarget, "stateDir">): string {
  return join(vm.stateDir, SEED_FILE);
}

/**
 * The seed as a drive. A CD-ROM on pc (IDE, as cloud images expect); elsewhere a read-only virtio
 * disk, which cloud-init finds by its `cidata` label all the same: q35's CD-ROMs sit on its AHCI
 * (SATA) controller, for which corral's image kernel has no driver, and a microvm has virtio only.
 */
function seedDrive(vm: MachineTarget): DriveOptions {
  return {
    path: seedPath(vm),
    media: vm.spec.machineType === "pc" ? "cdrom" : "disk",
    readOnly: true,
  };
}

/**
 * What a running VM may grow to: its template's `max` (memory at most what Machine can plug,
 * 512 GiB). None on a microvm, which has no bus to plug vCPUs or memory into, nor where the
 * template has no `max` above the VM's size.
 */
function headroom(spec: ManagedSpec): Pick<MachineOptions, "maxCpus" | "maxMemoryMiB"> {
  if (spec.machineType === "microvm") return {};
  const maxCpus = spec.max.cpus;
  const maxMemoryMiB = spec.max.memoryMiB && Math.min(spec.max.memoryMiB, MAX_MEMORY_MIB);
  return {
    ...(maxCpus !== undefined && maxCpus > spec.cpus ? { maxCpus } : {}),
    ...(maxMemoryMiB !== undefined && maxMemoryMiB > spec.memoryMiB ? { maxMemoryMiB } : {}),
  };
}
