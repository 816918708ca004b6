import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { newVm, temporaryStore } from "../../helpers/store.ts";

describe("EventRepository", () => {
  it("appends events in order and lists them after an id, for one VM or all", async () => {
    const store = await temporaryStore();
    expect(store.events.lastId()).toBe(0);
    const web = store.vms.create(newVm("web"));
    const first = store.events.append({
      type: "vm.state",
      vmId: web.id,
      data: { from: "created", to: "starting" },
    });
    expect(first).toEqual({
      id: 1,
      time: expect.any(String),
      vmId: web.id,
      type: "vm.state",
      data: { from: "created", to: "starting" },
    });
    const job = store.events.append({ type: "job.progress", data: { done: 1, total: 3 } });
    const last = store.events.append({ type: "vm.state", vmId: web.id, data: { to: "running" } });
    expect(job.vmId).toBeNull();
    expect(store.events.lastId()).toBe(last.id);
    expect(store.events.list().map((event) => event.id)).toEqual([1, 2, 3]);
    expect(store.events.list({ afterId: 1 }).map((event) => event.id)).toEqual([2, 3]);
    expect(store.events.list({ vmId: web.id }).map((event) => event.id)).toEqual([1, 3]);
    expect(store.events.list({ limit: 2 }).map((event) => event.id)).toEqual([1, 2]);
  });

  it("keep naming their VM after it is deleted", async () => {
    const store = await temporaryStore();
    const web = store.vms.create(newVm("web"));
    store.events.append({ type: "vm.deleted", vmId: web.id, data: { name: "web" } });
    store.vms.remove(web.id);
    expect(store.events.list({ vmId: web.id })).toEqual([
      expect.objectContaining({ type: "vm.deleted", data: { name: "web" } }),
    ]);
  });

  it("are capped: each append drops the oldest beyond the cap, and ids never repeat", async () => {
    const store = await temporaryStore({ maxEvents: 10 });
    for (let index = 1; index <= 25; index++) {
      store.events.append({ type: "tick", data: { index } });
    }
    const kept = store.events.list();
    expect(kept.map((event) => event.id)).toEqual(
      Array.from({ length: 10 }, (_, index) => 16 + index),
    );
    expect(kept.at(-1)?.data).toEqual({ index: 25 });
    store.events.prune({ keep: 0 });
    expect(store.events.append({ type: "tick" }).id).toBe(26);
  });

  it("are pruned by age or by count on request", async () => {
    const store = await temporaryStore();
    for (let index = 0; index < 6; index++) store.events.append({ type: "tick" });
    expect(store.events.prune({ keep: 4 })).toBe(2);
    expect(store.events.list().map((event) => event.id)).toEqual([3, 4, 5, 6]);
    expect(store.events.prune({ keep: 10 })).toBe(0);
    expect(store.events.prune({ before: "2000-01-01T00:00:00.000Z" })).toBe(0);
    expect(store.events.prune({ before: "9999-01-01T00:00:00.000Z" })).toBe(4);
    expect(store.events.list()).toEqual([]);
  });

  it("rejects bad types and data", async () => {
    const store = await temporaryStore();
    expect(() => store.events.append({ type: "VM State" })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: 'event type "VM State" must be dotted lower-case words, like "vm.state"',
      }),
    );
    expect(() => store.events.append({ type: "tick", data: [1] })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: "event data [1] must be a JSON object",
      }),
    );
  });
});
