// The transfer disk: a sparse raw file in the VM's state folder that QEMU gives the guest as a
// virtio disk (serial `corral-xfer`), for file copies that move MiBs per request instead of the
// `corral.xfer` port's 4 KiB (guest/transfer-disk.ts).

import { join } from "node:path";
import { TRANSFER_DISK_SERIAL } from "../../guest/transfer-disk-scripts.ts";
import type { VmSpec } from "../backend.ts";
import { qemuValue } from "./direct-args.ts";

const FILE = "transfer.raw";
/** The disk's QEMU drive id (`query-block` calls it the device). */
export const TRANSFER_DISK_DRIVE = "corral-xfer-disk";

/** The transfer disk's file of a VM given `spec`, when it has one (PCI machines only). */
export function transferDiskPath(spec: VmSpec): string | undefined {
  if (!spec.transferDisk || spec.machine?.type === "microvm") return undefined;
  return join(spec.stateDir, FILE);
}

/**
 * The disk's QEMU arguments, last on the command line so that it comes after the root disk and
 * the user's drives (the guest names virtio disks in PCI order: theirs keep /dev/vda, vdb…).
 * Flushes are ignored: its bytes matter only during a copy, and the host reads them from its
 * page cache.
 */
export function transferDiskArgs(path: string): string[] {
  return [
    ...[
      "-drive",
      `if=none,id=${TRANSFER_DISK_DRIVE},file=${qemuValue(path)},format=raw,cache=unsafe,discard=unmap`,
    ],
    ...[
      "-device",
      `virtio-blk-pci,drive=${TRANSFER_DISK_DRIVE},id=corral-xfer-blk,serial=${TRANSFER_DISK_SERIAL}`,
    ],
  ];
}
