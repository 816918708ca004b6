// Extracting the ELF kernel from a bzImage: a made-up bzImage with a gzip payload (the header
// fields of the x86 boot protocol, nothing more), the refusals, and the real image's vmlinuz when
// one is in the cache (Debian 12's cloud kernel, LZ4).

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { bzImagePayload, extractVmlinux } from "../../../src/images/extract-vmlinux.ts";
import { bzImage } from "../../helpers/bz-image.ts";

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-vmlinux-"));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(4096, 7)]);

describe("extractVmlinux", () => {
  it("finds the payload the header names and decompresses it to the ELF kernel", async () => {
    const vmlinuz = join(dir, "vmlinuz");
    writeFileSync(vmlinuz, bzImage(gzipSync(elf)));
    expect(bzImagePayload(readFileSync(vmlinuz)).format.name).toBe("gzip");
    await extractVmlinux(vmlinuz, join(dir, "vmlinux"));
    expect(readFileSync(join(dir, "vmlinux")).equals(elf)).toBe(true);
  });

  it("refuses a file that is not a bzImage, and an unknown compression", () => {
    const refusal = (buffer: Buffer) => {
      try {
        bzImagePayload(buffer);
      } catch (error) {
        expect(error).toBeInstanceOf(CorralError);
        return (error as CorralError).message;
      }
      throw new Error("no refusal");
    };
    expect(refusal(Buffer.alloc(4096))).toMatch(/not a bzImage/);
    expect(refusal(bzImage(Buffer.from("plain text kernel")))).toMatch(
      /no compression corral knows/,
    );
  });

  it("a payload that does not decompress to an ELF file leaves nothing behind", async () => {
    const vmlinuz = join(dir, "not-elf");
    writeFileSync(vmlinuz, bzImage(gzipSync(Buffer.from("not a kernel"))));
    const error = await extractVmlinux(vmlinuz, join(dir, "out")).catch((e: unknown) => e);
    expect((error as CorralError).code).toBe(ErrorCodes.HOST_COMMAND_FAILED);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  const images = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "corral/images");
  const cached = existsSync(images)
    ? readdirSync(images)
        .map((name) => join(images, name, "vmlinuz"))
        .find((path) => existsSync(path))
    : undefined;
  it.skipIf(!cached)("extracts the cached image's Debian kernel (needs lz4)", async () => {
    await extractVmlinux(cached as string, join(dir, "debian-vmlinux"));
    const head = readFileSync(join(dir, "debian-vmlinux")).subarray(0, 4);
    expect(head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))).toBe(true);
  });
});
