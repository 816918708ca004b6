import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import type { NewImage } from "../../../src/store/images.ts";
import { newVm, temporaryStore } from "../../helpers/store.ts";

const built: NewImage = {
  name: "debian",
  kind: "built",
  recipe: "debian",
  format: "qcow2",
  path: "/var/cache/corral-test/images/debian/disk.qcow2",
  sha256: "a".repeat(64),
  sizeBytes: 2_000_000_000,
};
const iso: NewImage = {
  name: "installer.iso",
  kind: "imported",
  format: "iso",
  path: "/srv/isos/installer.iso",
  sha256: "b".repeat(64),
  sizeBytes: 700_000_000,
};

describe("ImageRepository", () => {
  it("records built and imported images, found by id or name", async () => {
    const store = await temporaryStore();
    const debian = store.images.create(built);
    const installer = store.images.create(iso);
    expect(debian).toEqual({
      ...built,
      id: expect.stringMatching(/^[0-9A-Z]{26}$/),
      createdAt: expect.any(String),
    });
    expect(installer.recipe).toBeNull();
    expect(store.images.get("debian")).toEqual(debian);
    expect(store.images.get(installer.id)).toEqual(installer);
    expect(store.images.list()).toEqual([debian, installer]);
    expect(store.images.list({ kind: "imported" })).toEqual([installer]);
    expect(() => store.images.get("ubuntu")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: 'no image with id or name "ubuntu"',
      }),
    );
  });

  it("takes a name and a file once", async () => {
    const store = await temporaryStore();
    store.images.create(built);
    expect(() => store.images.create({ ...built, path: "/srv/other.qcow2" })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'an image named "debian" already exists',
      }),
    );
    expect(() => store.images.create({ ...built, name: "debian-copy" })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: `the file ${built.path} is already image "debian"`,
      }),
    );
  });

  it("rejects bad fields, naming them", async () => {
    const store = await temporaryStore();
    for (const [fields, message] of [
      [{ recipe: null }, "image recipe null is needed for a built image"],
      [{ kind: "imported" }, 'image recipe "debian" is only for built images'],
      [{ format: "vmdk" }, 'image format "vmdk" must be one of qcow2, raw, iso'],
      [{ sha256: "ABC" }, 'image sha256 "ABC" must be 64 lower-case hex digits'],
      [{ name: "Debian" }, 'image name "Debian" must be 1 to 63 lower-case letters'],
      [{ path: "disk.qcow2" }, 'image path "disk.qcow2" must be an absolute path'],
      [{ sizeBytes: 1.5 }, "image size 1.5 must be a whole number"],
    ] as const) {
      expect(() => store.images.create({ ...built, ...fields } as NewImage)).toThrow(
        expect.objectContaining({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: expect.stringContaining(message),
        }),
      );
    }
    expect(store.images.list()).toEqual([]);
  });

  it("cannot be deleted while a VM or a snapshot is on it", async () => {
    const store = await temporaryStore();
    const image = store.images.create(built);
    const vm = store.vms.create(newVm("web", { imageId: image.id }));
    const snapshot = store.snapshots.create({
      vmId: vm.id,
      name: "first",
      folder: "/srv/s/1",
      sizeBytes: 1,
    });
    expect(() => store.images.remove("debian")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message:
          'image "debian" is in use by VM "web", snapshot "first" of VM "web": delete them first',
      }),
    );
    store.vms.remove(vm.id);
    expect(() => store.images.remove("debian")).toThrow(
      expect.objectContaining({
        message: 'image "debian" is in use by snapshot "first" of VM "web": delete them first',
      }),
    );
    expect(() => store.database.prepare("DELETE FROM images WHERE id = ?").run(image.id)).toThrow(
      /FOREIGN KEY constraint failed/,
    );
    store.snapshots.remove(snapshot.id);
    expect(store.images.remove(image.id)).toEqual(image);
    expect(store.images.find("debian")).toBeUndefined();
  });
});
