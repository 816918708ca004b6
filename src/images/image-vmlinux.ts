// An image's uncompressed kernel (`vmlinux`), which Firecracker and Cloud Hypervisor boot: derived
// from the image's vmlinuz the first time a micro-VM backend needs it and kept beside it in the
// cache entry, so that image builds (and QEMU users) pay nothing for it: ~53 MB and ~0.7 s of lz4.

import { randomBytes } from "node:crypto";
import { access, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { extractVmlinux } from "./extract-vmlinux.ts";

/** The uncompressed kernel's name in an image's folder. */
export const VMLINUX_FILE = "vmlinux";

/**
 * The path of the image's `vmlinux` in `imageDir`, derived from its `vmlinuz` first when missing.
 * Written under a temporary name and renamed into place: two processes deriving it at once
 * both succeed, and no reader sees half a kernel. Throws what extractVmlinux throws
 * (CORRAL_HOST_TOOL_MISSING without the decompressor, `lz4` for Debian's kernels).
 */
export async function ensureVmlinux(imageDir: string): Promise<string> {
  const path = join(imageDir, VMLINUX_FILE);
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (exists) return path;
  const partial = `${path}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await extractVmlinux(join(imageDir, "vmlinuz"), partial);
    await rename(partial, path);
  } finally {
    await rm(partial, { force: true });
  }
  return path;
}
