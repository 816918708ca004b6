// The VM API through real HTTP on a real daemon's unix socket, without booting a VM (every VM is
// created with start: false): validation (400 naming the field), unknown things (404), states and
// claims (409), limits, label and state filters, waiting, the events stream, reconciling cut-short
// operations, racing creates, and the OpenAPI document. Needs the default image in the cache.

import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportBackends } from "../../src/backends/backend-report.ts";
import { ErrorCodes } from "../../src/errors.ts";
import { Manager } from "../../src/manager/manager.ts";
import { newId } from "../../src/store/ids.ts";
import { Store } from "../../src/store/store.ts";
import { temporaryDir } from "../helpers/cli.ts";
import { http } from "../helpers/http.ts";
import {
  type Api,
  type ManagerDaemon,
  openEventStream,
  startManagerDaemon,
} from "../helpers/manager.ts";

let manager: ManagerDaemon;
let api: Api;

beforeAll(async () => {
  manager = await startManagerDaemon({ heartbeatMs: 100 });
  api = manager.api;
  const { store } = manager.daemon.manager;
  store.templates.put({
    name: "linux-default",
    source: "builtin",
    body: { name: "linux-default", os: "linux", cpus: 1, memoryMiB: 384 },
  });
  store.templates.put({
    name: "small",
    source: "user",
    body: {
      name: "small",
      os: "linux",
      cpus: 1,
      memoryMiB: 256,
      min: { memoryMiB: 256 },
      max: { cpus: 2, memoryMiB: 1024 },
    },
  });
  store.templates.put({
    name: "windows-default",
    source: "builtin",
    body: {
      name: "windows-default",
      os: "windows",
      machineType: "q35",
      firmware: "uefi",
      cpus: 2,
      memoryMiB: 4096,
      diskGiB: 64,
      min: { cpus: 2, memoryMiB: 1024 },
    },
  });
});

afterAll(async () => {
  await manager?.[Symbol.asyncDispose]();
});

const create = (body: Record<string, unknown>) => api("POST", "/v1/vms", { start: false, ...body });

describe("creating VMs", () => {
  it("makes a VM from the OS's default template, with its folder, not started", async () => {
    const answer = await create({ name: "plain", labels: { env: "dev" } });
    expect(answer.status).toBe(201);
    expect(answer.json).toMatchObject({
      name: "plain",
      os: "linux",
      template: "linux-default",
      state: "created",
      operation: null,
      labels: { env: "dev" },
      spec: { backend: "qemu", machineType: "pc", cpus: 1, memoryMiB: 384 },
    });
    const id = (answer.json as { id: string }).id;
    expect(existsSync(join(manager.stateDir, "vms", id))).toBe(true);
    expect((await api("GET", "/v1/vms/plain")).json).toMatchObject({ id });
    expect((await api("GET", `/v1/vms/${id}`)).json).toMatchObject({ name: "plain" });
  });

  it("refuses bad bodies with 400 naming the field", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: "Bad_Name" }, /^body\/name must match pattern/],
      [{ name: "cpu0", cpus: 0 }, /^body\/cpus must be >= 1/],
      [{ name: "mem", memoryMiB: "lots" }, /^body\/memoryMiB must be integer/],
      [{ name: "extra", colour: "blue" }, /^body\/colour is not a known field/],
      [{ name: "lab", labels: { "bad key!": "x" } }, /^body\/labels/],
      [
        { name: "xen", backend: "xen" },
        /^body\/backend must be one of qemu, firecracker, cloud-hypervisor/,
      ],
    ];
    for (const [body, message] of cases) {
      const answer = await create(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message });
    }
    const badJson = await http(
      { socket: manager.socket },
      {
        method: "POST",
        path: "/v1/vms",
        headers: { "content-type": "application/json" },
        body: "{not json",
      },
    );
    expect(badJson.status).toBe(400);
  });

  it("refuses a backend that cannot run here with doctor's reason (503)", async () => {
    const reports = await reportBackends();
    for (const report of reports.filter((r) => !r.isUsable)) {
      const answer = await create({ name: `on-${report.name}`, backend: report.name });
      expect(answer.status, report.name).toBe(503);
      expect(answer.json).toMatchObject({ code: ErrorCodes.BACKEND_UNAVAILABLE });
      expect((answer.json as { message: string }).message).toContain(report.reason);
      expect((await api("GET", `/v1/vms/on-${report.name}`)).status).toBe(404);
    }
  });

  it("checks a template's minimum and maximum, saying which", async () => {
    const low = await api("POST", "/v1/vms/windows", { name: "win", cpus: 1, memoryMiB: 512 });
    expect(low.status).toBe(400);
    expect(low.json).toEqual({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: "template windows-default needs at least 2 vCPUs; asked: 1 (cpus)",
      details: [
        "template windows-default needs at least 1024 MiB of memory; asked: 512 (memoryMiB)",
      ],
    });
    const high = await create({ name: "big", template: "small", cpus: 4 });
    expect(high.status).toBe(400);
    expect(high.json).toMatchObject({
      message: "template small allows at most 2 vCPUs; asked: 4 (cpus)",
    });
    const mismatch = await api("POST", "/v1/vms/windows", { name: "w2", template: "small" });
    expect(mismatch.json).toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: "template small is for linux VMs; this one is windows",
    });
  });

  it("makes a Windows VM (q35, UEFI, an empty disk); refuses what Machine would, leaving nothing", async () => {
    const win = await api("POST", "/v1/vms/windows", { name: "win", start: false });
    expect(win.status, win.text).toBe(201);
    expect(win.json).toMatchObject({
      os: "windows",
      template: "windows-default",
      imageId: null,
      spec: { machineType: "q35", firmware: "uefi", image: null, cpus: 2, diskGiB: 64 },
    });
    const folders = readdirSync(join(manager.stateDir, "vms")).length;
    const iso = join(temporaryDir("corral-api-iso-"), "install.iso");
    writeFileSync(iso, "not really an ISO");
    const refusals: [Record<string, unknown>, string][] = [
      [
        { drives: [{ path: iso, media: "cdrom", readOnly: false }] },
        'machine "refused": drives[0] is a CD-ROM: always raw (an ISO) and read-only',
      ],
      [
        { drives: [{ path: "install.iso", media: "cdrom" }] },
        'drives[0].path "install.iso" is not an absolute path',
      ],
      [
        { drives: [{ path: `${iso}.gone`, media: "cdrom" }] },
        `drives[0].path "${iso}.gone" does not exist on the daemon's host`,
      ],
      [
        { diskGiB: 1 },
        "body/diskGiB is 1, smaller than the disk of image debian-12 (2 GiB): a disk only grows",
      ],
    ];
    for (const [body, message] of refusals) {
      const answer = await create({ name: "refused", ...body });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json).toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining(message),
      });
    }
    expect((await api("GET", "/v1/vms/refused")).status).toBe(404);
    expect(readdirSync(join(manager.stateDir, "vms"))).toHaveLength(folders);
  });

  it("answers 404 for an unknown template, image or snapshot", async () => {
    for (const [body, code] of [
      [{ name: "t", template: "nope" }, ErrorCodes.NOT_FOUND],
      [{ name: "i", image: "no-such-image" }, ErrorCodes.IMAGE_UNKNOWN],
      [{ name: "s", fromSnapshot: newId() }, ErrorCodes.NOT_FOUND],
    ] as const) {
      const answer = await create(body);
      expect(answer.status, JSON.stringify(body)).toBe(404);
      expect(answer.json).toMatchObject({ code });
    }
  });

  it("keeps at most limits.maxVms VMs", async () => {
    await using small = await startManagerDaemon({ maxVms: 2 });
    for (const name of ["one", "two"]) {
      expect((await small.api("POST", "/v1/vms", { name, start: false })).status).toBe(201);
    }
    const third = await small.api("POST", "/v1/vms", { name: "three", start: false });
    expect(third.status).toBe(409);
    expect(third.json).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("the daemon keeps at most 2 VMs and has 2"),
    });
  });
});

describe("VM calls", () => {
  it("answers 404 for an unknown VM on every route", async () => {
    for (const [method, path] of [
      ["GET", "/v1/vms/ghost"],
      ["PATCH", "/v1/vms/ghost"],
      ["DELETE", "/v1/vms/ghost"],
      ["POST", "/v1/vms/ghost/start"],
      ["POST", "/v1/vms/ghost/stop"],
      ["POST", "/v1/vms/ghost/pause"],
      ["POST", "/v1/vms/ghost/resize"],
      ["GET", "/v1/vms/ghost/wait?state=running"],
      ["GET", "/v1/vms/ghost/stats"],
      ["POST", "/v1/vms/ghost/snapshots"],
      ["GET", `/v1/snapshots/${newId()}`],
      ["DELETE", `/v1/snapshots/${newId()}`],
      ["POST", `/v1/snapshots/${newId()}/restore`],
    ] as const) {
      const body = method === "PATCH" ? { labels: {} } : method === "POST" ? {} : undefined;
      const answer = await api(method, path, path.endsWith("resize") ? { cpus: 1 } : body);
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.json).toMatchObject({ code: ErrorCodes.NOT_FOUND });
    }
  });

  it("refuses an action the VM's state does not allow with 409 naming the state", async () => {
    await create({ name: "idle" });
    for (const [action, needs] of [
      ["stop", "starting or running or paused"],
      ["pause", "running"],
      ["resume", "paused"],
      ["reboot", "running"],
      ["snapshots", "running or paused"],
    ] as const) {
      const answer = await api("POST", `/v1/vms/idle/${action}`);
      expect(answer.status, action).toBe(409);
      expect(answer.json).toMatchObject({
        code: ErrorCodes.CONFLICT,
        message: `VM "idle" is created: ${action === "snapshots" ? "snapshot" : action} needs it ${needs}`,
      });
    }
  });

  it("refuses a second operation while one holds the VM, naming it", async () => {
    const vm = (await create({ name: "held" })).json as { id: string };
    const { store } = manager.daemon.manager;
    store.vms.claim(vm.id, { operation: "start", from: "created" });
    try {
      const answer = await api("DELETE", "/v1/vms/held");
      expect(answer.status).toBe(409);
      expect(answer.json).toMatchObject({
        message: 'VM "held" is busy with start: delete cannot run until it ends',
      });
      expect((await api("GET", "/v1/vms/held")).json).toMatchObject({ operation: "start" });
    } finally {
      store.vms.release(vm.id, "start");
    }
  });

  it("changes labels at any time, and vCPUs and memory within the template's limits", async () => {
    await create({ name: "patchy", template: "small" });
    const patched = await api("PATCH", "/v1/vms/patchy", { labels: { tier: "web" }, cpus: 2 });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ labels: { tier: "web" }, spec: { cpus: 2 } });
    const low = await api("PATCH", "/v1/vms/patchy", { memoryMiB: 128 });
    expect(low.json).toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: "template small needs at least 256 MiB of memory; asked: 128 (memoryMiB)",
    });
    expect((await api("PATCH", "/v1/vms/patchy", { name: "x" })).json).toMatchObject({
      message: "body/name is not a known field",
    });
  });

  it("resizes a VM at rest; its disk only before it has one, and only to grow", async () => {
    await create({ name: "sized", template: "small" });
    const grown = await api("POST", "/v1/vms/sized/resize", { memoryMiB: 512 });
    expect(grown.status).toBe(200);
    expect(grown.json).toMatchObject({ spec: { memoryMiB: 512 } });
    const over = await api("POST", "/v1/vms/sized/resize", { cpus: 3 });
    expect(over.status).toBe(409);
    expect(over.json).toMatchObject({
      message: "template small allows at most 2 vCPUs; asked: 3 (cpus)",
    });
    // Its disk is to be the image's as it is: it grows while the VM runs.
    expect((await api("POST", "/v1/vms/sized/resize", { diskGiB: 8 })).json).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("start it, then grow the disk"),
    });
    expect((await api("POST", "/v1/vms/sized/resize", {})).status).toBe(400);
    await create({ name: "disky", template: "small", diskGiB: 4 });
    const disk = await api("POST", "/v1/vms/disky/resize", { diskGiB: 6 });
    expect(disk.json).toMatchObject({ spec: { diskGiB: 6 } });
    expect((await api("POST", "/v1/vms/disky/resize", { diskGiB: 5 })).json).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message:
        'VM "disky" is created: resize: diskGiB 5 is less than the 6 GiB its disk is to be made with: a disk only grows',
    });
  });

  it("lists VMs by state and labels", async () => {
    await create({ name: "lab-a", labels: { team: "red", env: "ci" } });
    await create({ name: "lab-b", labels: { team: "red" } });
    const names = async (query: string) =>
      ((await api("GET", `/v1/vms?${query}`)).json as { name: string }[]).map((vm) => vm.name);
    expect(await names("label=team=red")).toEqual(["lab-a", "lab-b"]);
    expect(await names("label=team=red&label=env=ci")).toEqual(["lab-a"]);
    // The same query again after a change answers the change, not a kept copy.
    await api("PATCH", "/v1/vms/lab-b", { labels: { team: "red", env: "ci" } });
    expect(await names("label=team=red&label=env=ci")).toEqual(["lab-a", "lab-b"]);
    await api("DELETE", "/v1/vms/lab-b");
    expect(await names("label=team=red")).toEqual(["lab-a"]);
    expect(await names("state=running")).toEqual([]);
    expect((await names("state=created")).length).toBeGreaterThan(2);
    expect((await api("GET", "/v1/vms?state=asleep")).status).toBe(400);
    expect((await api("GET", "/v1/vms?label=noequals")).status).toBe(400);
  });

  it("waits for a state: at once when it is in it, 504 after timeoutMs otherwise", async () => {
    await create({ name: "waiter" });
    const now = await api("GET", "/v1/vms/waiter/wait?state=created");
    expect(now.status).toBe(200);
    const started = Date.now();
    const late = await api("GET", "/v1/vms/waiter/wait?state=running&timeoutMs=300");
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(late.status).toBe(504);
    expect(late.json).toMatchObject({
      code: ErrorCodes.TIMEOUT,
      message: 'VM "waiter" is still created after 300 ms of waiting for running',
    });
    expect((await api("GET", "/v1/vms/waiter/wait?state=running&timeoutMs=999999")).status).toBe(
      400,
    );
  });

  it("shows no stats for a VM that does not run", async () => {
    const vm = (await create({ name: "still" })).json as { id: string };
    expect((await api("GET", "/v1/vms/still/stats")).json).toEqual({
      vmId: vm.id,
      state: "created",
      uptimeS: null,
      vmm: null,
      block: [],
      nics: [],
    });
  });

  it("deletes a VM at rest with its folder", async () => {
    const vm = (await create({ name: "doomed" })).json as { id: string };
    expect((await api("DELETE", "/v1/vms/doomed")).status).toBe(204);
    expect(existsSync(join(manager.stateDir, "vms", vm.id))).toBe(false);
    expect((await api("GET", "/v1/vms/doomed")).status).toBe(404);

    await create({ name: "doomed-later" });
    const accepted = await api("DELETE", "/v1/vms/doomed-later?wait=false");
    expect(accepted.status).toBe(202);
    expect(accepted.json).toMatchObject({ state: "deleting", operation: "delete" });
    const waited = await api("GET", "/v1/vms/doomed-later/wait?state=stopped");
    expect(waited.status).toBe(404);
  });
});

describe("GET /v1/events", () => {
  it("streams state changes as server-sent events, resumable after the last id", async () => {
    const stream = openEventStream(manager.socket, "/v1/events");
    expect(await stream.status).toBe(200);
    await create({ name: "evented" });
    const created = await stream.waitFor(
      (event) => (event.data as { data: { to: string } }).data.to === "created",
    );
    expect(created).toMatchObject({
      event: "vm.state",
      data: {
        type: "vm.state",
        data: { name: "evented", from: "creating", to: "created", operation: null },
      },
    });
    await stream.waitFor(() => stream.comments.includes("heartbeat"), 5000);
    stream.close();

    // What happened while no one listened comes first on a stream resumed after the last id.
    await api("DELETE", "/v1/vms/evented");
    const resumed = openEventStream(manager.socket, "/v1/events", {
      "last-event-id": String(created.id),
    });
    const deleted = await resumed.waitFor((event) => event.event === "vm.deleted");
    expect(
      resumed.events.map((event) => [event.event, (event.data as { vmId: string }).vmId]),
    ).toEqual([
      ["vm.state", (created.data as { vmId: string }).vmId],
      ["vm.deleted", (created.data as { vmId: string }).vmId],
    ]);
    expect(Number(deleted.id)).toBeGreaterThan(Number(created.id));
    resumed.close();

    const filtered = openEventStream(manager.socket, `/v1/events?vm=quiet&after=0`);
    expect(await filtered.status).toBe(404);
    await create({ name: "quiet" });
    await create({ name: "noisy" });
    const onlyQuiet = openEventStream(manager.socket, `/v1/events?vm=quiet&after=0`);
    await onlyQuiet.waitFor(
      (event) => (event.data as { data: { to: string } }).data.to === "created",
    );
    expect(
      new Set(
        onlyQuiet.events.map((event) => (event.data as { data: { name: string } }).data.name),
      ),
    ).toEqual(new Set(["quiet"]));
    onlyQuiet.close();
  });

  it("ends open streams when the daemon stops", async () => {
    const other = await startManagerDaemon({});
    const stream = openEventStream(other.socket, "/v1/events");
    expect(await stream.status).toBe(200);
    await other[Symbol.asyncDispose]();
    await stream.ended;
  });
});

describe("reconciling on start", () => {
  it("undoes a cut-short create, finishes a delete, and marks a VM with no VMM crashed", async () => {
    const stateDir = temporaryDir("corral-reconcile-");
    const store = await Store.open({ dir: stateDir });
    try {
      const vm = (name: string, state: "creating" | "deleting" | "running" | "stopped") =>
        store.vms.create({
          name,
          os: "linux",
          spec: {},
          state,
          stateDir: join(stateDir, "vms", name),
        });
      vm("half", "creating");
      vm("going", "deleting");
      const lost = vm("lost", "running");
      const resting = vm("resting", "stopped");
      store.vms.claim(resting.id, { operation: "update", from: "stopped" });
      await using opened = await Manager.open({ stateDir, store });
      expect(opened.vms.list().map((each) => [each.name, each.state, each.operation])).toEqual([
        ["lost", "crashed", null],
        ["resting", "stopped", null],
      ]);
      expect(opened.vms.get(lost.id).stateReason).toMatch(/its VMM ended while the daemon/);
      expect(opened.events.list().map((event) => event.data.to ?? event.type)).toEqual(
        expect.arrayContaining(["crashed", "vm.deleted"]),
      );
    } finally {
      store.close();
    }
  });
});

describe("racing creates", () => {
  it("20 distinct names all win; of 5 creates of one name exactly one does", async () => {
    await using racing = await startManagerDaemon({});
    const distinct = Array.from({ length: 20 }, (_, i) => `vm-${i}`);
    const answers = await Promise.all([
      ...distinct.map((name) => racing.api("POST", "/v1/vms", { name, start: false })),
      ...Array.from({ length: 5 }, () =>
        racing.api("POST", "/v1/vms", { name: "same", start: false }),
      ),
    ]);
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(201));
    expect(statuses.slice(20).sort()).toEqual([201, 409, 409, 409, 409]);
    for (const lost of answers.slice(20).filter((answer) => answer.status === 409)) {
      expect(lost.json).toMatchObject({ message: 'a VM named "same" already exists' });
    }
    const listed = (await racing.api("GET", "/v1/vms")).json as {
      id: string;
      name: string;
      state: string;
      operation: string | null;
    }[];
    expect(listed.map((vm) => vm.name).sort()).toEqual([...distinct, "same"].sort());
    expect(new Set(listed.map((vm) => `${vm.state}/${vm.operation}`))).toEqual(
      new Set(["created/null"]),
    );
    expect(readdirSync(join(racing.stateDir, "vms")).sort()).toEqual(
      listed.map((vm) => vm.id).sort(),
    );
    const { store } = racing.daemon.manager;
    expect(store.database.pragma("integrity_check")).toBe("ok");
  });
});

describe("the OpenAPI document", () => {
  it("is valid and lists every VM, snapshot and event route", async () => {
    const document = (await api("GET", "/openapi.json")).json as {
      paths: Record<string, Record<string, unknown>>;
    };
    await SwaggerParser.validate(structuredClone(document) as never);
    const routes = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes).toEqual(
      expect.arrayContaining([
        "POST /v1/vms",
        "POST /v1/vms/linux",
        "POST /v1/vms/windows",
        "GET /v1/vms",
        "GET /v1/vms/{id}",
        "PATCH /v1/vms/{id}",
        "DELETE /v1/vms/{id}",
        "POST /v1/vms/{id}/start",
        "POST /v1/vms/{id}/stop",
        "POST /v1/vms/{id}/reboot",
        "POST /v1/vms/{id}/pause",
        "POST /v1/vms/{id}/resume",
        "POST /v1/vms/{id}/resize",
        "GET /v1/vms/{id}/wait",
        "GET /v1/vms/{id}/stats",
        "POST /v1/vms/{id}/snapshots",
        "GET /v1/snapshots",
        "GET /v1/snapshots/{id}",
        "DELETE /v1/snapshots/{id}",
        "POST /v1/snapshots/{id}/restore",
        "GET /v1/events",
      ]),
    );
  });
});
