import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createQemuDisk } from "../../../../src/backends/qemu/qemu-disks.ts";
import { ErrorCodes } from "../../../../src/errors.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-disks-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function info(path: string): Record<string, unknown> {
  return JSON.parse(
    execFileSync("qemu-img", ["info", "--output=json", path], { encoding: "utf8" }),
  );
}

describe("createQemuDisk", () => {
  it("makes an overlay over a raw base, grown to the size asked", async () => {
    const base = join(dir, "base.raw");
    await writeFile(base, Buffer.alloc(1024 * 1024));
    await createQemuDisk(join(dir, "root.qcow2"), {
      base: { path: base, format: "raw" },
      sizeGiB: 2,
    });
    expect(info(join(dir, "root.qcow2"))).toMatchObject({
      format: "qcow2",
      "virtual-size": 2 * 1024 ** 3,
      "backing-filename": base,
      "backing-filename-format": "raw",
    });
  });

  it("makes an empty disk of a size", async () => {
    await createQemuDisk(join(dir, "empty.qcow2"), { sizeGiB: 1 });
    expect(info(join(dir, "empty.qcow2"))).toMatchObject({ "virtual-size": 1024 ** 3 });
    expect(info(join(dir, "empty.qcow2"))["backing-filename"]).toBeUndefined();
  });

  it("refuses to shrink a base, a missing base, and an empty disk without a size", async () => {
    const base = join(dir, "big.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", base, "3G"]);
    await expect(
      createQemuDisk(join(dir, "a.qcow2"), { base: { path: base, format: "qcow2" }, sizeGiB: 2 }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `diskGiB is 2, smaller than the disk ${base} (3.0 GiB); disks only grow`,
    });
    await expect(
      createQemuDisk(join(dir, "b.qcow2"), { base: { path: join(dir, "nope"), format: "raw" } }),
    ).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
    await expect(createQemuDisk(join(dir, "c.qcow2"), {})).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
  });
});
