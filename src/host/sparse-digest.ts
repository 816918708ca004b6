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

/** The checksum of the file at `path`. */
export async function sparseDigest(path: string): Promise<string> {
  const file = await open(path, "r");
  try {
    return await digestChunks(file);
  } finally {
    await file.close();
  }
}

/**
 * Reads `file` once, MiB by MiB, and returns its checksum; `onData` gets each non-zero chunk
 * and its offset in bytes (the buffer is reused: it must be consumed before it resolves).
 */
export async function digestChunks(
  file: FileHandle,
  onData?: (chunk: Buffer, offset: number) => Promise<unknown>,
): Promise<string> {
  const size = (await file.stat()).size;
  const hash = createHash("sha256");
  const buffer = Buffer.alloc(SPARSE_CHUNK_BYTES);
  const offsetBytes = Buffer.alloc(8);
  for (let offset = 0; offset < size; offset += SPARSE_CHUNK_BYTES) {
    const length = Math.min(SPARSE_CHUNK_BYTES, size - offset);
    const { bytesRead } = await file.read(buffer, 0, length, offset);
    const chunk = buffer.subarray(0, bytesRead);
    if (chunk.equals(ZERO.subarray(0, bytesRead))) continue;
    offsetBytes.writeBigUInt64BE(BigInt(offset));
    hash.update(offsetBytes);
    hash.update(chunk);
    await onData?.(chunk, offset);
  }
  return hash.digest("hex");
}
