import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { DATABASE_FILE } from "../../../src/store/database.ts";
import { newId } from "../../../src/store/ids.ts";
import { Store } from "../../../src/store/store.ts";
import { listQuery } from "../../../src/store/vms.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { newVm, temporaryStore } from "../../helpers/store.ts";

const image = {
  name: "debian",
  kind: "built",
  recipe: "debian",
  format: "qcow2",
  path: "/var/cache/corral-test/debian.qcow2",
  sha256: "0".repeat(64),
  sizeBytes: 1024,
} as const;

describe("VmRepository", () => {
  it("creates a VM and finds it by id or by name", async () => {
    const store = await temporaryStore();
    const { id: imageId } = store.images.create(image);
    const vm = store.vms.create(
      newVm("web-1", {
        template: "linux-default",
        imageId,
        spec: { cpus: 2, disks: [{ sizeGiB: 4 }] },
        labels: { team: "infra", "app.kubernetes.io/name": "web" },
      }),
    );
    expect(vm).toMatchObject({
      name: "web-1",
      template: "linux-default",
      imageId,
      sourceSnapshotId: null,
      os: "linux",
      spec: { cpus: 2, disks: [{ sizeGiB: 4 }] },
      state: "created",
      stateReason: null,
      operation: null,
      stateDir: "/var/lib/corral-test/vms/web-1",
      ownership: null,
      labels: { team: "infra", "app.kubernetes.io/name": "web" },
    });
    expect(vm.id).toMatch(/^[0-9A-Z]{26}$/);
    expect(vm.createdAt).toBe(vm.updatedAt);
    expect(store.vms.get(vm.id)).toEqual(vm);
    expect(store.vms.get("web-1")).toEqual(vm);
    expect(store.vms.find("web-2")).toBeUndefined();
    expect(() => store.vms.get("web-2")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: 'no VM with id or name "web-2"',
      }),
    );
  });

  it("takes the id the caller chose, so that its folder can be named after it", async () => {
    const store = await temporaryStore();
    const id = newId();
    const vm = store.vms.create(newVm("chosen", { id, stateDir: `/srv/vms/${id}` }));
    expect(vm.id).toBe(id);
  });

  it("rejects bad fields with CORRAL_INVALID_ARGUMENT naming the field", async () => {
    const store = await temporaryStore();
    const cases: [Parameters<typeof newVm>[1] & { name?: string }, string][] = [
      [{ name: "Web" }, 'VM name "Web" must be a DNS label'],
      [{ name: "-web" }, 'VM name "-web" must be a DNS label'],
      [{ name: "a".repeat(64) }, "VM name"],
      [{ name: "web.1" }, 'VM name "web.1" must be a DNS label'],
      [{ os: "macos" as never }, 'os "macos" must be one of linux, windows'],
      [{ state: "flying" as never }, 'VM state "flying" must be one of creating, created'],
      [{ spec: [] as never }, "VM spec [] must be a JSON object"],
      [{ spec: { size: 1n } as never }, "VM spec"],
      [{ stateDir: "vms/web" }, 'VM folder "vms/web" must be an absolute path'],
      [{ labels: { "bad key": "x" } }, 'labels key "bad key" must be 1 to 63 letters'],
      [{ labels: { key: 1 as never } }, "labels.key 1 must be a string"],
      [{ labels: { key: "a\nb" } }, "labels.key"],
    ];
    for (const [fields, message] of cases) {
      expect(() => store.vms.create(newVm(fields.name ?? "web", fields))).toThrow(
        expect.objectContaining({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: expect.stringContaining(message),
        }),
      );
    }
    expect(store.vms.list()).toEqual([]);
  });

  it("refuses a VM on an image or a snapshot that does not exist", async () => {
    const store = await temporaryStore();
    const missing = newId();
    expect(() => store.vms.create(newVm("web", { imageId: missing }))).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: `no image with id "${missing}"`,
      }),
    );
    expect(() => store.vms.create(newVm("web", { sourceSnapshotId: missing }))).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: `no snapshot with id "${missing}"`,
      }),
    );
  });

  it("refuses a second VM of one name or one folder with CORRAL_CONFLICT", async () => {
    const store = await temporaryStore();
    store.vms.create(newVm("web"));
    expect(() => store.vms.create(newVm("web", { stateDir: "/srv/other" }))).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'a VM named "web" already exists',
      }),
    );
    expect(() =>
      store.vms.create(newVm("db", { stateDir: "/var/lib/corral-test/vms/web" })),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: "the folder /var/lib/corral-test/vms/web already belongs to another VM",
      }),
    );
    expect(store.vms.list().map((vm) => vm.name)).toEqual(["web"]);
  });

  it("lets exactly one of many racing creates of one name win, over two connections", async () => {
    const dir = temporaryDir("corral-store-");
    const first = await Store.open({ dir });
    const second = await Store.open({ dir });
    onTestFinished(() => {
      first.close();
      second.close();
    });
    const attempts = await Promise.allSettled(
      Array.from({ length: 12 }, async (_, index) => {
        await nextTurn();
        const store = index % 2 === 0 ? first : second;
        return store.vms.create(newVm("contested", { stateDir: `/srv/vms/attempt-${index}` }));
      }),
    );
    const won = attempts.filter((attempt) => attempt.status === "fulfilled");
    const lost = attempts.filter((attempt) => attempt.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(11);
    for (const attempt of lost) {
      expect(attempt.reason).toMatchObject({
        code: ErrorCodes.CONFLICT,
        message: 'a VM named "contested" already exists',
      });
    }
    expect(second.vms.list()).toEqual([won[0]?.value]);
  });

  it("lets exactly one of many threads, each with its own connection, create a name", async () => {
    // Workers open a new database together (racing to migrate it), then create at one signal.
    const dir = temporaryDir("corral-store-");
    const threads = 4;
    const start = new SharedArrayBuffer(4);
    const results: Promise<unknown>[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < threads; index++) {
      const worker = new Worker(new URL("./create-vm-worker.ts", import.meta.url), {
        workerData: { dir, name: "contested", index, start },
      });
      onTestFinished(async () => {
        await worker.terminate();
      });
      const messages: unknown[] = [];
      ready.push(
        new Promise((resolve, reject) => {
          worker.once("error", reject);
          worker.once("message", () => resolve());
        }),
      );
      results.push(
        new Promise((resolve, reject) => {
          worker.on("message", (message) => messages.push(message));
          worker.once("error", reject);
          worker.once("exit", () => resolve(messages.at(-1)));
        }),
      );
    }
    await Promise.all(ready);
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    const outcomes = (await Promise.all(results)) as ({ won: string } | { lost: object })[];
    const won = outcomes.filter((outcome) => "won" in outcome);
    expect(won).toHaveLength(1);
    expect(outcomes.filter((outcome) => "lost" in outcome)).toEqual(
      Array.from({ length: threads - 1 }, () => ({
        lost: { code: ErrorCodes.CONFLICT, message: 'a VM named "contested" already exists' },
      })),
    );
    using store = await Store.open({ dir });
    expect(store.vms.list().map((vm) => vm.id)).toEqual(won.map((outcome) => outcome.won));
    expect(store.database.pragma("integrity_check")).toBe("ok");
    expect(store.database.path).toBe(join(dir, DATABASE_FILE));
  });

  it("points a VM at the snapshot its disk was rolled back onto, which then cannot go", async () => {
    const store = await temporaryStore();
    const web = store.vms.create(newVm("web"));
    const snapshot = store.snapshots.create({
      vmId: web.id,
      name: "base",
      folder: "/srv/corral-test/snapshots/base",
      sizeBytes: 1,
    });
    expect(store.vms.update(web.id, { sourceSnapshotId: snapshot.id }).sourceSnapshotId).toBe(
      snapshot.id,
    );
    expect(() => store.snapshots.remove(snapshot.id)).toThrow(
      expect.objectContaining({ code: ErrorCodes.CONFLICT }),
    );
    expect(() => store.vms.update(web.id, { sourceSnapshotId: newId() })).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
    expect(store.vms.update(web.id, { sourceSnapshotId: null }).sourceSnapshotId).toBeNull();
    expect(store.snapshots.remove(snapshot.id).id).toBe(snapshot.id);
  });

  it("changes state only from the expected states (compare-and-set)", async () => {
    const store = await temporaryStore();
    const { id } = store.vms.create(newVm("web"));
    const started = store.vms.transition(id, { from: ["created", "stopped"], to: "starting" });
    expect(started.applied).toBe(true);
    expect(started.vm.state).toBe("starting");
    const again = store.vms.transition(id, { from: ["created", "stopped"], to: "starting" });
    expect(again).toEqual({ applied: false, vm: started.vm });

    const crashed = store.vms.transition(id, {
      from: "starting",
      to: "crashed",
      reason: "the VMM (pid 4242) was gone when corral serve started",
    });
    expect(crashed.vm).toMatchObject({
      state: "crashed",
      stateReason: "the VMM (pid 4242) was gone when corral serve started",
    });
    expect(crashed.vm.stateChangedAt >= started.vm.stateChangedAt).toBe(true);
    // A later change clears the reason unless it gives one.
    expect(store.vms.transition(id, { from: "crashed", to: "stopped" }).vm.stateReason).toBeNull();
    expect(() => store.vms.transition(newId(), { from: "stopped", to: "starting" })).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
    expect(() => store.vms.transition(id, { from: [], to: "starting" })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
    );
  });

  it("applies one of two racing state changes from two connections, never both", async () => {
    const dir = temporaryDir("corral-store-");
    const first = await Store.open({ dir });
    const second = await Store.open({ dir });
    onTestFinished(() => {
      first.close();
      second.close();
    });
    const { id } = first.vms.create(newVm("web", { state: "running" }));
    const [pause, stop] = await Promise.all([
      nextTurn().then(() => first.vms.transition(id, { from: "running", to: "paused" })),
      nextTurn().then(() => second.vms.transition(id, { from: "running", to: "stopping" })),
    ]);
    expect([pause.applied, stop.applied].sort()).toEqual([false, true]);
    expect(first.vms.get(id).state).toBe(pause.applied ? "paused" : "stopping");
  });

  it("lets one operation at a time claim a VM, in the states it allows", async () => {
    const store = await temporaryStore();
    const { id } = store.vms.create(newVm("web", { state: "running" }));
    const resizing = store.vms.claim(id, { operation: "resize", from: ["running"] });
    expect(resizing).toMatchObject({ operation: "resize", state: "running" });
    expect(() =>
      store.vms.claim(id, { operation: "snapshot", from: ["running", "paused"] }),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'VM "web" is busy with resize: snapshot cannot run until it ends',
      }),
    );
    expect(store.vms.release(id, "snapshot")).toBe(false);
    expect(store.vms.get(id).operation).toBe("resize");
    expect(store.vms.release(id, "resize")).toBe(true);

    const stopping = store.vms.claim(id, { operation: "stop", from: ["running"], to: "stopping" });
    expect(stopping).toMatchObject({ operation: "stop", state: "stopping" });
    expect(store.vms.release(id, "stop", { to: "stopped" })).toBe(true);
    expect(store.vms.get(id)).toMatchObject({ operation: null, state: "stopped" });
    expect(() => store.vms.claim(id, { operation: "pause", from: ["running"] })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'VM "web" is stopped: pause needs it running',
      }),
    );
  });

  it("drops every claim at once, returning the VMs that were held", async () => {
    const store = await temporaryStore();
    const a = store.vms.create(newVm("a", { state: "running" }));
    store.vms.create(newVm("b", { state: "running" }));
    store.vms.claim(a.id, { operation: "reboot", from: ["running"] });
    expect(store.vms.releaseAll()).toEqual([
      expect.objectContaining({ name: "a", operation: "reboot" }),
    ]);
    expect(store.vms.list().map((vm) => vm.operation)).toEqual([null, null]);
  });

  it("lists VMs by state and by labels, through indexes", async () => {
    const store = await temporaryStore();
    store.vms.create(newVm("a", { state: "running", labels: { env: "prod", team: "web" } }));
    store.vms.create(newVm("b", { state: "stopped", labels: { env: "prod", team: "db" } }));
    store.vms.create(newVm("c", { state: "running", labels: { env: "dev", team: "web" } }));
    store.vms.create(newVm("d", { state: "paused" }));
    const names = (filter: Parameters<typeof store.vms.list>[0]) =>
      store.vms.list(filter).map((vm) => vm.name);
    expect(names({})).toEqual(["a", "b", "c", "d"]);
    expect(names({ state: "running" })).toEqual(["a", "c"]);
    expect(names({ state: ["running", "paused"] })).toEqual(["a", "c", "d"]);
    expect(names({ labels: { env: "prod" } })).toEqual(["a", "b"]);
    expect(names({ labels: { env: "prod", team: "web" } })).toEqual(["a"]);
    expect(names({ state: "running", labels: { team: "web" } })).toEqual(["a", "c"]);
    expect(names({ labels: { env: "staging" } })).toEqual([]);
    expect(() => names({ state: "flying" as never })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
    );

    const plan = (filter: Parameters<typeof listQuery>[0]) => {
      const { sql, parameters } = listQuery(filter);
      const rows = store.database.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...parameters);
      return rows.map((row) => row.detail).join("\n");
    };
    expect(plan({ state: "running" })).toContain("USING INDEX vms_by_state (state=?)");
    expect(plan({ labels: { env: "prod" } })).toContain(
      "USING COVERING INDEX vm_labels_by_key_value (key=? AND value=?)",
    );
    expect(plan({})).not.toContain("SCAN vm_labels");
  });

  it("updates spec, labels and ownership record, leaving the rest", async () => {
    const store = await temporaryStore();
    const vm = store.vms.create(newVm("web", { labels: { env: "dev", team: "web" } }));
    const record = { format: 1, backend: "qemu", pid: 4242, sockets: { qmp: "/run/q.sock" } };
    const updated = store.vms.update(vm.id, {
      spec: { cpus: 4 },
      labels: { env: "prod" },
      ownership: record,
    });
    expect(updated).toEqual({
      ...vm,
      spec: { cpus: 4 },
      labels: { env: "prod" },
      ownership: record,
      updatedAt: updated.updatedAt,
    });
    expect(store.vms.list({ labels: { team: "web" } })).toEqual([]);
    expect(store.vms.update(vm.id, { ownership: null }).ownership).toBeNull();
    expect(store.vms.update(vm.id, {}).spec).toEqual({ cpus: 4 });
    expect(() => store.vms.update(newId(), { spec: {} })).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
  });

  it("removes a VM with its labels, freeing its name", async () => {
    const store = await temporaryStore();
    const vm = store.vms.create(newVm("web", { labels: { env: "dev" } }));
    expect(store.vms.remove(vm.id)).toEqual(vm);
    expect(store.vms.list()).toEqual([]);
    expect(store.database.prepare("SELECT count(*) AS count FROM vm_labels").get()).toEqual({
      count: 0,
    });
    expect(() => store.vms.remove(vm.id)).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND, message: `no VM with id "${vm.id}"` }),
    );
    expect(store.vms.create(newVm("web")).name).toBe("web");
  });
});
