// A snapshot's memory file, written from a running QEMU's shared RAM (its memfd, reached through
// /proc/<pid>/fd): sparse where the guest's RAM is zero.

import { open, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { chunkOffsets, nonZeroChunks } from "../../host/sparse-digest.ts";
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
 * MiBs as holes. Returns the offsets of the MiBs written, which is all the copy's checksum
 * (sparseDigestAt) needs to read: it is taken once the VM runs again, which the copy alone
 * keeps paused.
 */
export async function copyMemory(from: string, to: string): Promise<number[]> {
  const source = await open(from, "r");
  try {
    const target = await open(to, "wx");
    try {
      const size = (await source.stat()).size;
      const written: number[] = [];
      for await (const { offset, chunk } of nonZeroChunks(source, chunkOffsets(size))) {
        await target.write(chunk, 0, chunk.length, offset);
        written.push(offset);
      }
      await target.truncate(size);
      return written;
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}
