// A snapshot's memory file, written from a running QEMU's shared RAM (its memfd, reached through
// /proc/<pid>/fd): sparse where the guest's RAM is zero, checksummed in the same pass.

import { open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { digestChunks } from "../../host/sparse-digest.ts";
import { MEMFD_NAME } from "./memory-backend.ts";

/**
 * The path of QEMU's shared RAM (pid `pid`) of `sizeBytes`, or undefined when its RAM is not a
 * memfd of that size (a start script's own RAM, a restored VM's mapped file).
 */
export async function sharedMemoryPath(
  pid: number,
  sizeBytes: number,
): Promise<string | undefined> {
  const fds = join("/proc", String(pid), "fd");
  for (const fd of await readdir(fds).catch(() => [])) {
    const target = await readlink(join(fds, fd)).catch(() => "");
    if (!target.startsWith(`/memfd:${MEMFD_NAME}`)) continue;
    const handle = await open(join(fds, fd), "r").catch(() => undefined);
    const size = await handle?.stat().then((info) => info.size);
    await handle?.close();
    if (size === sizeBytes) return join(fds, fd);
  }
  return undefined;
}

/**
 * Copies the RAM at `from` (read while the VM is paused) into a new file `to`, leaving its zero
 * MiBs as holes. Returns the copy's checksum (host/sparse-digest.ts).
 */
export async function copyMemory(from: string, to: string): Promise<string> {
  const source = await open(from, "r");
  try {
    const target = await open(to, "wx");
    try {
      const digest = await digestChunks(source, (chunk, offset) =>
        target.write(chunk, 0, chunk.length, offset),
      );
      await target.truncate((await source.stat()).size);
      return digest;
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}
