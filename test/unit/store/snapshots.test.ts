import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { newId } from "../../../src/store/ids.ts";
import { newVm, temporaryStore } from "../../helpers/store.ts";

describe("SnapshotRepository", () => {
  it("records a snapshot with its VM's name, image, OS and spec as they are", async () => {
    const store = await temporaryStore();
    const { id: imageId } = store.images.create({
      name: "debian",
      kind: "imported",
      format: "qcow2",
      path: "/var/cache/corral-test/debian.qcow2",
      sha256: "f".repeat(64),
      sizeBytes: 1,
    });
    const vm = store.vms.create(newVm("web", { imageId, os: "linux", spec: { cpus: 2 } }));
    const snapshot = store.snapshots.create({
      vmId: vm.id,
      name: "before-upgrade",
      folder: "/srv/snapshots/1",
      sizeBytes: 4096,
    });
    expect(snapshot).toEqual({
      id: expect.stringMatching(/^[0-9A-Z]{26}$/),
      vmId: vm.id,
      vmName: "web",
      name: "before-upgrade",
      imageId,
      os: "linux",
      spec: { cpus: 2 },
      folder: "/srv/snapshots/1",
      sizeBytes: 4096,
      createdAt: expect.any(String),
    });
    // The VM changes afterwards; the snapshot keeps what it was.
    store.vms.update(vm.id, { spec: { cpus: 4 } });
    expect(store.snapshots.get(snapshot.id).spec).toEqual({ cpus: 2 });
    expect(store.snapshots.list({ vmId: vm.id })).toEqual([snapshot]);
  });

  it("names a snapshot once per VM, and a folder once", async () => {
    const store = await temporaryStore();
    const web = store.vms.create(newVm("web"));
    const db = store.vms.create(newVm("db"));
    store.snapshots.create({ vmId: web.id, name: "daily", folder: "/srv/s/1", sizeBytes: 1 });
    expect(() =>
      store.snapshots.create({ vmId: web.id, name: "daily", folder: "/srv/s/2", sizeBytes: 1 }),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'VM "web" already has a snapshot named "daily"',
      }),
    );
    expect(() =>
      store.snapshots.create({ vmId: db.id, name: "other", folder: "/srv/s/1", sizeBytes: 1 }),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: "the folder /srv/s/1 already belongs to another snapshot",
      }),
    );
    store.snapshots.create({ vmId: db.id, name: "daily", folder: "/srv/s/3", sizeBytes: 1 });
    expect(store.snapshots.list().map((s) => `${s.vmName}/${s.name}`)).toEqual([
      "web/daily",
      "db/daily",
    ]);
  });

  it("refuses a snapshot of a VM that does not exist, or with bad fields", async () => {
    const store = await temporaryStore();
    const missing = newId();
    expect(() =>
      store.snapshots.create({ vmId: missing, name: "s", folder: "/srv/s", sizeBytes: 1 }),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: `no VM with id "${missing}"`,
      }),
    );
    const vm = store.vms.create(newVm("web"));
    const good = { vmId: vm.id, name: "s", folder: "/srv/s", sizeBytes: 1 };
    for (const [fields, message] of [
      [{ name: "Daily" }, 'snapshot name "Daily" must be 1 to 63 lower-case letters'],
      [{ folder: "snap" }, 'snapshot folder "snap" must be an absolute path'],
      [{ sizeBytes: -1 }, "snapshot size -1 must be a whole number, 0 or more"],
    ] as const) {
      expect(() => store.snapshots.create({ ...good, ...fields })).toThrow(
        expect.objectContaining({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: expect.stringContaining(message),
        }),
      );
    }
  });

  it("outlives its VM as a clone source, and cannot go while a clone is on it", async () => {
    const store = await temporaryStore();
    const web = store.vms.create(newVm("web", { spec: { cpus: 2 } }));
    const snapshot = store.snapshots.create({
      vmId: web.id,
      name: "golden",
      folder: "/srv/s/golden",
      sizeBytes: 1,
    });
    store.vms.remove(web.id);
    const orphan = store.snapshots.get(snapshot.id);
    expect(orphan).toEqual({ ...snapshot, vmId: null });

    const clone = store.vms.create(
      newVm("web-clone", { sourceSnapshotId: snapshot.id, spec: orphan.spec }),
    );
    expect(() => store.snapshots.remove(snapshot.id)).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message:
          'snapshot "golden" of VM "web" is the disk under VMs "web-clone": delete them first',
      }),
    );
    // The schema itself refuses it too, whoever deletes the row.
    expect(() =>
      store.database.prepare("DELETE FROM snapshots WHERE id = ?").run(snapshot.id),
    ).toThrow(/FOREIGN KEY constraint failed/);
    store.vms.remove(clone.id);
    expect(store.snapshots.remove(snapshot.id)).toEqual(orphan);
    expect(store.snapshots.list()).toEqual([]);
    expect(() => store.snapshots.get(snapshot.id)).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: `no snapshot with id "${snapshot.id}"`,
      }),
    );
  });
});
