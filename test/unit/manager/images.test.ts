// ImageService imports and deletes with real files made by qemu-img and xorriso: the format as
// qemu-img sees it, refusals, sha256 checks, and nothing left behind when an import fails.

import { existsSync, mkdirSync, readdirSync, truncateSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { newId } from "../../../src/store/ids.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { makeImageFiles, sha256Of, temporaryImageService } from "../../helpers/image-files.ts";
import { newVm } from "../../helpers/store.ts";

/** What is in the state folder's images folder (nothing when it was never made). */
function leftovers(stateDir: string): string[] {
  const root = join(stateDir, "images");
  return existsSync(root) ? readdirSync(root) : [];
}

describe("ImageService.import", () => {
  it("copies a qcow2, a raw disk and an ISO into their own folders, with their sha256", async () => {
    const files = makeImageFiles();
    const { images, stateDir } = await temporaryImageService();
    const qcow2 = await images.import({ name: "disk", path: files.qcow2 });
    const raw = await images.import({ name: "raw-disk", path: files.raw });
    const iso = await images.import({
      name: "installer",
      path: files.iso,
      sha256: sha256Of(files.iso).toUpperCase(),
    });
    expect(qcow2).toEqual({
      id: expect.stringMatching(/^[0-9A-Z]{26}$/),
      name: "disk",
      kind: "imported",
      recipe: null,
      format: "qcow2",
      path: join(stateDir, "images", qcow2.id, "disk.qcow2"),
      sha256: sha256Of(files.qcow2),
      sizeBytes: expect.any(Number),
      createdAt: expect.any(String),
    });
    expect([raw.format, iso.format]).toEqual(["raw", "iso"]);
    for (const image of [qcow2, raw, iso]) {
      expect(sha256Of(image.path)).toBe(image.sha256);
      expect(readdirSync(dirname(image.path))).toEqual([basename(image.path)]);
    }
    expect(iso.sha256).toBe(sha256Of(files.iso));
    expect(readdirSync(join(stateDir, "images")).sort()).toEqual([qcow2.id, raw.id, iso.id].sort());
    expect(images.list().map((image) => image.name)).toEqual(["disk", "raw-disk", "installer"]);
    expect(images.get("installer")).toEqual(iso);
    expect(images.get(iso.id)).toEqual(iso);
  });

  it("takes an ISO as raw when asked, and refuses a format the file is not", async () => {
    const files = makeImageFiles();
    const { images } = await temporaryImageService();
    expect(
      (await images.import({ name: "cd-as-disk", path: files.iso, format: "raw" })).format,
    ).toBe("raw");
    await expect(
      images.import({ name: "x", path: files.raw, format: "iso" }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `image file ${files.raw} is a raw image, not an ISO 9660 image: leave format out or give raw`,
    });
    await expect(
      images.import({ name: "x", path: files.qcow2, format: "raw" }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining("is a qcow2 image, not raw"),
    });
  });

  it("refuses what a VM could not use on its own, saying how to make it usable", async () => {
    const files = makeImageFiles();
    const { images, stateDir } = await temporaryImageService();
    const refusals: [string, string][] = [
      [
        files.vmdk,
        "is a vmdk image; corral takes qcow2, raw and ISO images: convert it first: qemu-img convert -O qcow2",
      ],
      [files.backed, "is a qcow2 with a backing file (disk.qcow2)"],
      [files.external, "is a qcow2 whose data lives in another file"],
    ];
    for (const [path, why] of refusals) {
      await expect(images.import({ name: "refused", path })).rejects.toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining(`image file ${path} ${why}`),
      });
    }
    // A qcow2 header of a version no qemu-img knows.
    const garbage = join(files.dir, "garbage.qcow2");
    const header = Buffer.alloc(104);
    header.write("QFI\xfb", 0, "latin1");
    header.writeUInt32BE(99, 4);
    writeFileSync(garbage, header);
    await expect(images.import({ name: "refused", path: garbage })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining(`image file ${garbage} cannot be read by qemu-img info`),
      details: [expect.stringContaining("Unsupported qcow2 version 99")],
    });
    expect(leftovers(stateDir)).toEqual([]);
    expect(images.list()).toEqual([]);
  });

  it("refuses a file whose sha256 differs, naming both, and leaves nothing behind", async () => {
    const files = makeImageFiles();
    const { images, stateDir } = await temporaryImageService();
    const wrong = "0".repeat(64);
    await expect(
      images.import({ name: "disk", path: files.qcow2, sha256: wrong }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining(
        `has sha256 ${sha256Of(files.qcow2)}, not the expected ${wrong}`,
      ),
    });
    expect(leftovers(stateDir)).toEqual([]);
    expect(images.list()).toEqual([]);
    // The name is still free.
    expect((await images.import({ name: "disk", path: files.qcow2 })).name).toBe("disk");
  });

  it("refuses bad paths and names, and a name that is taken", async () => {
    const files = makeImageFiles();
    const { images } = await temporaryImageService();
    const cases: [Parameters<typeof images.import>[0], string, string][] = [
      [{ name: "a", path: "disk.qcow2" }, ErrorCodes.INVALID_ARGUMENT, "must be absolute"],
      [{ name: "a", path: join(files.dir, "nope") }, ErrorCodes.INVALID_ARGUMENT, "does not exist"],
      [{ name: "a", path: files.dir }, ErrorCodes.INVALID_ARGUMENT, "is not a regular file"],
      [{ name: "Bad Name", path: files.qcow2 }, ErrorCodes.INVALID_ARGUMENT, "image name"],
    ];
    for (const [request, code, message] of cases) {
      await expect(images.import(request)).rejects.toMatchObject({
        code,
        message: expect.stringContaining(message),
      });
    }
    const first = await images.import({ name: "disk", path: files.qcow2 });
    await expect(images.import({ name: "disk", path: files.raw })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: `an image named "disk" already exists (id ${first.id}): delete it or choose another name`,
    });
  });

  it("stops when aborted and leaves nothing behind", async () => {
    const dir = temporaryDir("corral-big-");
    const big = join(dir, "big.raw");
    writeFileSync(big, "");
    truncateSync(big, 128 * 1024 * 1024);
    const { images, stateDir } = await temporaryImageService();
    const controller = new AbortController();
    const importing = images.import({ name: "big", path: big }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 10);
    await expect(importing).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
    expect(leftovers(stateDir)).toEqual([]);
    expect(images.list()).toEqual([]);
  });

  it("removes what a killed daemon left: partial folders and folders of unrecorded images", async () => {
    const files = makeImageFiles();
    const { images, stateDir } = await temporaryImageService();
    const root = join(stateDir, "images");
    const orphan = join(root, newId());
    // pid 2^22 + 1 is above Linux's pid_max: never alive.
    const partial = join(root, `.${newId()}.partial-0123456789ab-${2 ** 22 + 1}`);
    for (const folder of [orphan, partial]) {
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, "disk.qcow2"), "left over");
    }
    const image = await images.import({ name: "disk", path: files.qcow2 });
    expect(readdirSync(root)).toEqual([image.id]);
  });
});

describe("ImageService.remove", () => {
  it("deletes the record and the folder", async () => {
    const files = makeImageFiles();
    const { images } = await temporaryImageService();
    const image = await images.import({ name: "disk", path: files.qcow2 });
    expect(await images.remove("disk")).toEqual(image);
    expect(existsSync(dirname(image.path))).toBe(false);
    await expect(images.remove("disk")).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });

  it("refuses while a VM uses the image, naming it and what to do", async () => {
    const files = makeImageFiles();
    const { images, store } = await temporaryImageService();
    const image = await images.import({ name: "disk", path: files.qcow2 });
    store.vms.create(newVm("web", { imageId: image.id }));
    await expect(images.remove(image.id)).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringMatching(/^image "disk" is in use by VM "web": delete them first\n/),
      details: [expect.stringContaining("DELETE /v1/vms/{name}")],
    });
    expect(existsSync(image.path)).toBe(true);
    expect(images.get("disk")).toEqual(image);
  });
});
