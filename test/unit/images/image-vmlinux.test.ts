// Deriving an image's vmlinux on first use: from a made-up bzImage (gzip payload) in a folder
// standing in for a cache entry; once there, it is kept; two at once both get it whole.

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureVmlinux } from "../../../src/images/image-vmlinux.ts";
import { bzImage } from "../../helpers/bz-image.ts";

let dir: string;
/** What the made-up kernel decompresses to: an ELF header and some bytes. */
const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(100_000, 7)]);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-image-vmlinux-"));
  writeFileSync(join(dir, "vmlinuz"), bzImage(gzipSync(elf)));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("ensureVmlinux", () => {
  it("derives the image's vmlinux beside its vmlinuz once, then keeps it", async () => {
    const path = await ensureVmlinux(dir);
    expect(path).toBe(join(dir, "vmlinux"));
    expect(readFileSync(path)).toEqual(elf);
    const { mtimeMs } = statSync(path);
    writeFileSync(join(dir, "vmlinuz"), "no longer a kernel");
    expect(await ensureVmlinux(dir)).toBe(path);
    expect(statSync(path).mtimeMs).toBe(mtimeMs);
  });

  it("gives concurrent callers the whole kernel and leaves no partial file", async () => {
    const paths = await Promise.all([ensureVmlinux(dir), ensureVmlinux(dir), ensureVmlinux(dir)]);
    expect(new Set(paths)).toEqual(new Set([join(dir, "vmlinux")]));
    expect(readFileSync(join(dir, "vmlinux"))).toEqual(elf);
    expect(readdirSync(dir).sort()).toEqual(["vmlinux", "vmlinuz"]);
  });

  it("leaves nothing behind when the vmlinuz is not a kernel", async () => {
    writeFileSync(join(dir, "vmlinuz"), "not a kernel");
    await expect(ensureVmlinux(dir)).rejects.toThrow(/bzImage/);
    expect(readdirSync(dir)).toEqual(["vmlinuz"]);
  });
});
