// Disk files for QEMU VMs: a qcow2 overlay over a base disk (never written to), grown to a size
// if asked, or an empty qcow2 disk of a size (an installer's target).

import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { CorralError, ErrorCodes } from "../../errors.ts";
import { runProgram } from "../../host/run-program.ts";
import type { DiskImage } from "../backend.ts";

const GIB = 1024 ** 3;

/**
 * Creates the qcow2 disk `path`: an overlay over `base` (grown to `sizeGiB`), or an empty disk
 * of `sizeGiB`. Throws CORRAL_NOT_FOUND for a missing base, CORRAL_INVALID_ARGUMENT for a size
 * below the base's or for neither a base nor a size.
 */
export async function createQemuDisk(
  path: string,
  options: { base?: DiskImage | undefined; sizeGiB?: number | undefined },
): Promise<void> {
  const { base, sizeGiB } = options;
  const size = sizeGiB === undefined ? [] : [`${sizeGiB}G`];
  if (!base) {
    if (sizeGiB === undefined) {
      throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `an empty disk needs a size (diskGiB)`);
    }
    await runProgram("qemu-img", ["create", "-q", "-f", "qcow2", path, ...size]);
    return;
  }
  const basePath = resolve(base.path);
  await access(basePath).catch((error: unknown) => {
    throw new CorralError(ErrorCodes.NOT_FOUND, `the disk ${basePath} does not exist`, {
      cause: error,
    });
  });
  if (sizeGiB !== undefined) {
    const baseBytes = await virtualSize(basePath, base.format);
    if (sizeGiB * GIB < baseBytes) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `diskGiB is ${sizeGiB}, smaller than the disk ${basePath} (${(baseBytes / GIB).toFixed(1)} GiB); disks only grow`,
      );
    }
  }
  await runProgram("qemu-img", [
    ...["create", "-q", "-f", "qcow2", "-F", base.format, "-b", basePath, path],
    ...size,
  ]);
}

/** The size the guest sees of the disk at `path`, in bytes. */
async function virtualSize(path: string, format: string): Promise<number> {
  const { stdout } = await runProgram("qemu-img", ["info", "--output=json", "-f", format, path]);
  return (JSON.parse(stdout) as { "virtual-size": number })["virtual-size"];
}
