// Guest RAM that a snapshot can map instead of stream. A VM corral boots keeps its RAM in a
// shared memfd (gone with QEMU, even on SIGKILL: nothing to clean up); a snapshot copies the
// memfd's pages into a file beside the device state, and a restore maps that file privately
// (copy-on-write), so clones share its pages and the file is never written.

import type { MachineType, VmSpec } from "../backend.ts";
import { DISK_BOOT_MEMORY_MIB } from "./direct-args.ts";

/** What backs a VM's RAM: a shared memfd (snapshots map it) or a snapshot's memory file. */
export type GuestMemory = { kind: "shared"; sizeMiB: number } | MappedMemory;

/** A snapshot's memory file, mapped privately: the guest's writes stay in QEMU's own pages. */
export interface MappedMemory {
  kind: "mapped";
  sizeMiB: number;
  path: string;
}

/** The memfd name QEMU gives memory-backend-memfd (qemu_memfd_create with the type name). */
export const MEMFD_NAME = "memory-backend-memfd";

/**
 * The RAM of a VM started for `spec`, when corral knows its size and machine type; undefined
 * leaves QEMU's own anonymous RAM (a Nix start script's, whose `-m` and `-machine` corral does
 * not know), which snapshots stream instead.
 */
export function guestMemoryFor(spec: VmSpec): { kind: "shared"; sizeMiB: number } | undefined {
  const { boot } = spec;
  const sizeMiB =
    spec.memoryMiB ??
    (boot.kind === "image" ? boot.direct?.memoryMiB : undefined) ??
    (boot.kind === "disk" ? DISK_BOOT_MEMORY_MIB : undefined);
  if (boot.kind === "start-script" || sizeMiB === undefined) return undefined;
  return { kind: "shared", sizeMiB };
}

/**
 * `-m`, `-object` and `-machine memory-backend=` for `memory`. The backend takes the id of the RAM
 * QEMU would make itself (`pc.ram`, `microvm.ram`), so that the migration stream names the
 * same RAM block either way and streamed snapshots restore across both.
 */
export function memoryArgs(memory: GuestMemory, machineType: MachineType | undefined): string[] {
  const id = machineType === "microvm" ? "microvm.ram" : "pc.ram";
  const object =
    memory.kind === "shared"
      ? `memory-backend-memfd,id=${id},size=${memory.sizeMiB}M,share=on`
      : `memory-backend-file,id=${id},size=${memory.sizeMiB}M,share=off,mem-path=${memory.path.replaceAll(",", ",,")}`;
  // `-m` again: the backend's size must be the machine's, and QEMU merges repeated `-m` options.
  return ["-m", String(memory.sizeMiB), "-object", object, "-machine", `memory-backend=${id}`];
}
