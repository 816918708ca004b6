// A checksum of a large, mostly-zero file (a guest's RAM) that costs a zero test, not a hash, for
// its zero bulk: sha256 over each non-zero MiB's offset and bytes. Equal files give equal digests
// and any changed byte changes it; the file's size is recorded beside it.

import { createHash } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";

/** The unit in which zero bytes are skipped. */
export const SPARSE_CHUNK_BYTES = 2 ** 20;
const ZERO = Buffer.alloc(SPARSE_CHUNK_BYTES);

/** The name manifests give this checksum. */
export const SPARSE_DIGEST = "sha256-nonzero-mib" as const;

/** The checksum of the file at `path`, read once, MiB by MiB. */
export async function sparseDigest(path: string): Promise<string> {
  const file = await open(path, "r");
  try {
    return await digestAt(file, chunkOffsets((await file.stat()).size));
  } finally {
    await file.close();
  }
}

/**
 * The checksum of the file at `path` whose non-zero MiBs are all among `offsets` (bytes, in
 * ascending order, multiples of SPARSE_CHUNK_BYTES): only those MiBs are read, so a sparse copy's
 * holes cost nothing. Equals sparseDigest(path).
 */
export async function sparseDigestAt(path: string, offsets: readonly number[]): Promise<string> {
  const file = await open(path, "r");
  try {
    return await digestAt(file, offsets);
  } finally {
    await file.close();
  }
}

/** The offset of every MiB of a file of `size` bytes. */
export function chunkOffsets(size: number): number[] {
  const offsets: number[] = [];
  for (let offset = 0; offset < size; offset += SPARSE_CHUNK_BYTES) offsets.push(offset);
  return offsets;
}

/**
 * The MiBs of `file` at `offsets` that are not all zero. The next MiB is read into a second
 * buffer while the caller handles this one, which is only valid until it asks for the next.
 */
export async function* nonZeroChunks(
  file: FileHandle,
  offsets: readonly number[],
): AsyncGenerator<{ offset: number; chunk: Buffer }> {
  const buffers = [Buffer.alloc(SPARSE_CHUNK_BYTES), Buffer.alloc(SPARSE_CHUNK_BYTES)];
  const read = (index: number) => {
    const offset = offsets[index];
    const buffer = buffers[index % 2] as Buffer;
    return offset === undefined ? undefined : file.read(buffer, 0, SPARSE_CHUNK_BYTES, offset);
  };
  let next = read(0);
  try {
    for (const [index, offset] of offsets.entries()) {
      const { bytesRead, buffer } = await (next as NonNullable<typeof next>);
      next = read(index + 1);
      const chunk = buffer.subarray(0, bytesRead);
      if (!chunk.equals(ZERO.subarray(0, bytesRead))) yield { offset, chunk };
    }
  } finally {
    // A caller that stopped early leaves a read in flight on a file it is about to close.
    await next?.catch(() => undefined);
  }
}

async function digestAt(file: FileHandle, offsets: readonly number[]): Promise<string> {
  const hash = createHash("sha256");
  const offsetBytes = Buffer.alloc(8);
  for await (const { offset, chunk } of nonZeroChunks(file, offsets)) {
    offsetBytes.writeBigUInt64BE(BigInt(offset));
    hash.update(offsetBytes);
    hash.update(chunk);
  }
  return hash.digest("hex");
}
