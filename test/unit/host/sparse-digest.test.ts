import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  SPARSE_CHUNK_BYTES,
  sparseDigest,
  sparseDigestAt,
} from "../../../src/host/sparse-digest.ts";

const dir = mkdtempSync(join(tmpdir(), "corral-sparse-digest-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 4 MiB file, zero but for `bytes` written at `offset`. */
async function file(name: string, offset: number, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, "");
  truncateSync(path, 4 * SPARSE_CHUNK_BYTES);
  const handle = await open(path, "r+");
  await handle.write(bytes, 0, bytes.length, offset);
  await handle.close();
  return path;
}

describe("sparseDigest", () => {
  it("is equal for equal files and changes with any byte, its offset included", async () => {
    const data = Buffer.from("guest memory");
    const a = await sparseDigest(await file("a", SPARSE_CHUNK_BYTES + 5, data));
    expect(await sparseDigest(await file("b", SPARSE_CHUNK_BYTES + 5, data))).toBe(a);
    expect(await sparseDigest(await file("moved", 2 * SPARSE_CHUNK_BYTES + 5, data))).not.toBe(a);
    expect(await sparseDigest(await file("shifted", SPARSE_CHUNK_BYTES + 6, data))).not.toBe(a);
    expect(
      await sparseDigest(
        await file("changed", SPARSE_CHUNK_BYTES + 5, Buffer.from("guest memorz")),
      ),
    ).not.toBe(a);
    // A single non-zero byte in a chunk that was zero counts too.
    const path = await file("flipped", SPARSE_CHUNK_BYTES + 5, data);
    const handle = await open(path, "r+");
    await handle.write(Buffer.from([1]), 0, 1, 3 * SPARSE_CHUNK_BYTES + 7);
    await handle.close();
    expect(await sparseDigest(path)).not.toBe(a);
  });
});

describe("sparseDigestAt", () => {
  it("equals sparseDigest when given every non-zero MiB, whatever else it is given", async () => {
    const path = await file("at", SPARSE_CHUNK_BYTES + 5, Buffer.from("guest memory"));
    const whole = await sparseDigest(path);
    expect(await sparseDigestAt(path, [SPARSE_CHUNK_BYTES])).toBe(whole);
    // A zero MiB among the offsets counts for nothing, as in the whole file.
    expect(await sparseDigestAt(path, [0, SPARSE_CHUNK_BYTES, 3 * SPARSE_CHUNK_BYTES])).toBe(whole);
    expect(await sparseDigestAt(path, [])).not.toBe(whole);
  });
});
