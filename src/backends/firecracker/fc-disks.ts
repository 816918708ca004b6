// Firecracker's disks are raw files (it has no qcow2 and no backing files): a VM's root disk is a
// sparse raw copy of the image's (qemu-img convert), a snapshot's a reflinked or sparse copy.

import { access, open } from "node:fs/promises";
import { resolve } from "node:path";
import { CorralError, ErrorCodes } from "../../errors.ts";
import { runProgram } from "../../host/run-program.ts";
import type { DiskImage } from "../backend.ts";

const GIB = 1024 ** 3;

/** The Firecracker binary: $CORRAL_FIRECRACKER, else `firecracker` on PATH. */
export function firecrackerBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.CORRAL_FIRECRACKER || "firecracker";
}

/**
 * Creates the raw disk `path`: a copy of `base` (qcow2 converted, raw copied sparsely), grown to
 * `sizeGiB` if given, or an empty sparse disk of `sizeGiB`. Throws CORRAL_NOT_FOUND for a missing
 * base, CORRAL_INVALID_ARGUMENT for a size below the base's or neither a base nor a size.
 */
export async function createFcDisk(
  path: string,
  options: { base?: DiskImage | undefined; sizeGiB?: number | undefined },
): Promise<void> {
  const { base, sizeGiB } = options;
  if (base) {
    const basePath = resolve(base.path);
    await access(basePath).catch((error: unknown) => {
      throw new CorralError(ErrorCodes.NOT_FOUND, `the disk ${basePath} does not exist`, {
        cause: error,
      });
    });
    if (base.format === "qcow2") {
      await runProgram("qemu-img", ["convert", "-q", "-f", "qcow2", "-O", "raw", basePath, path]);
    } else {
      await runProgram("cp", ["--reflink=auto", "--sparse=always", basePath, path]);
    }
  } else if (sizeGiB === undefined) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, "an empty disk needs a size (diskGiB)");
  }
  if (sizeGiB === undefined) return;
  const file = await open(path, base ? "r+" : "w");
  try {
    const { size } = await file.stat();
    if (sizeGiB * GIB < size) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `diskGiB is ${sizeGiB}, smaller than the disk ${path} (${(size / GIB).toFixed(1)} GiB); disks only grow`,
      );
    }
    await file.truncate(sizeGiB * GIB);
  } finally {
    await file.close();
  }
}

/** Whether the file at `path` is a qcow2 image (its magic `QFI\xfb`). */
export async function isQcow2(path: string): Promise<boolean> {
  const file = await open(path, "r");
  try {
    const { buffer } = await file.read(Buffer.alloc(4), 0, 4, 0);
    return buffer.readUInt32BE(0) === 0x514649fb;
  } finally {
    await file.close();
  }
}
