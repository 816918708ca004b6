// One real VM through the VM API on a real daemon's unix socket: create → running → pause (the
// guest's clock and a counter stop) → resume → stats → snapshot → clone (both run, each with its
// own writes, name and machine id; it powers off by itself and boots from its own disk) →
// restore → a second snapshot that outlives its VM and the first (the clone's VMM killed:
// crashed) → a clone of it, resized while it runs (nproc, MemTotal and its disk grow in the guest)
// → stop → delete, and nothing left. The API has no exec yet: the test
// reaches the guest through the daemon's own Machine of the VM. The events stream follows it all.

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Machine } from "../../src/machine/machine.ts";
import {
  type Api,
  type EventStream,
  type ManagerDaemon,
  openEventStream,
  qemuPidsUnder,
  startManagerDaemon,
} from "../helpers/manager.ts";

interface VmJson {
  id: string;
  name: string;
  state: string;
  sourceSnapshotId: string | null;
}

let manager: ManagerDaemon;
let api: Api;
let events: EventStream;
let life: VmJson;
let snapshotId: string;

/** The daemon's Machine of VM `name` (the API has no exec yet). */
function guest(name: string): Machine {
  const machine = manager.daemon.manager.vms.machineOf(name);
  if (!machine) throw new Error(`the daemon has no machine for ${name}`);
  return machine;
}

/** The guest's clock (s) and the counter a background loop in it increments. */
async function clockAndCounter(name: string): Promise<{ clockS: number; count: number }> {
  const [clock, count] = (
    await guest(name).succeed(
      'date +%s.%N; c=; while [ -z "$c" ]; do c=$(cat /tmp/counter); done; echo "$c"',
    )
  ).split("\n");
  return { clockS: Number(clock), count: Number(count) };
}

beforeAll(async () => {
  manager = await startManagerDaemon();
  api = manager.api;
  events = openEventStream(manager.socket, "/v1/events");
  const created = await api("POST", "/v1/vms", { name: "life", cpus: 1, memoryMiB: 512 });
  expect(created.status, created.text).toBe(201);
  life = created.json as VmJson;
});

afterAll(async () => {
  events?.close();
  await manager?.[Symbol.asyncDispose]();
});

describe("a VM through the API", () => {
  it("is running once created, named after its VM", async () => {
    expect(life).toMatchObject({ name: "life", state: "running" });
    expect(await guest("life").succeed("hostname; cat /etc/hostname")).toBe("life\nlife\n");
    const stats = (await api("GET", "/v1/vms/life/stats")).json;
    expect(stats).toMatchObject({
      vmId: life.id,
      state: "running",
      uptimeS: expect.any(Number),
      vmm: { pid: expect.any(Number), cpuTimeS: expect.any(Number), rssBytes: expect.any(Number) },
      block: [{ device: "root", readBytes: expect.any(Number) }],
    });
    const { vmm, block } = stats as {
      vmm: { cpuTimeS: number; rssBytes: number };
      block: { readBytes: number }[];
    };
    expect(vmm.cpuTimeS).toBeGreaterThan(0);
    expect(vmm.rssBytes).toBeGreaterThan(64 * 1024 * 1024);
    expect(block[0]?.readBytes).toBeGreaterThan(0);
  });

  it("pauses: the guest's clock and a counter stop; resumes", async () => {
    // Ten ticks a second of guest time, with no fork per tick (forks are slow under TCG): the
    // wait is a read with a timeout on a FIFO nobody writes to.
    await guest("life").succeed(
      "mkfifo /tmp/tick && nohup bash -c 'exec 9<>/tmp/tick; i=0; while :; do i=$((i+1)); echo $i > /tmp/counter; read -t 0.1 -u 9; done' >/dev/null 2>&1 &",
      "sleep 1",
    );
    const before = await clockAndCounter("life");
    const pausedAt = Date.now();
    const paused = await api("POST", "/v1/vms/life/pause");
    expect(paused.json).toMatchObject({ state: "paused", operation: null });
    await sleep(3000);
    expect((await api("GET", "/v1/vms/life")).json).toMatchObject({ state: "paused" });
    expect((await api("POST", "/v1/vms/life/resume")).json).toMatchObject({ state: "running" });
    const after = await clockAndCounter("life");
    const hostS = (Date.now() - pausedAt) / 1000;
    expect(hostS - (after.clockS - before.clockS)).toBeGreaterThan(2.5);
    await sleep(3000);
    const later = await clockAndCounter("life");
    // Three seconds running count more than three seconds paused (and the calls around them).
    expect(later.count - after.count).toBeGreaterThan(after.count - before.count);
  });

  it("snapshots; a clone runs beside it with its own writes, name and machine id", async () => {
    await guest("life").succeed("echo before > /root/before && sync");
    const taken = await api("POST", "/v1/vms/life/snapshots", { name: "base" });
    expect(taken.status, taken.text).toBe(201);
    expect(taken.json).toMatchObject({ vmId: life.id, vmName: "life", name: "base" });
    snapshotId = (taken.json as { id: string }).id;
    expect((await api("GET", "/v1/snapshots?vm=life")).json).toEqual([taken.json]);
    await guest("life").succeed("echo after > /root/after-snapshot");

    const cloned = await api("POST", "/v1/vms", { name: "life-clone", fromSnapshot: snapshotId });
    expect(cloned.status, cloned.text).toBe(201);
    expect(cloned.json).toMatchObject({ state: "running", sourceSnapshotId: snapshotId });
    const clone = guest("life-clone");
    expect(await clone.succeed("hostname; cat /root/before")).toBe("life-clone\nbefore\n");
    await clone.fail("test -e /root/after-snapshot");
    await clone.succeed("echo mine > /root/in-clone && sync");
    await guest("life").fail("test -e /root/in-clone");
    const ids = await Promise.all(
      ["life", "life-clone"].map((name) => guest(name).succeed("cat /etc/machine-id")),
    );
    expect(ids[0]).not.toBe(ids[1]);

    const inUse = await api("DELETE", `/v1/snapshots/${snapshotId}`);
    expect(inUse.status).toBe(409);
    expect(inUse.json).toMatchObject({ message: expect.stringContaining('"life-clone"') });
  });

  it("sees a guest power off by itself, and restarts it from its own disk", async () => {
    // A timer of systemd's own powers it off: the shell, ended by the shutdown, has replied by then.
    await guest("life-clone").succeed("systemd-run --on-active=1 systemctl poweroff");
    const ended = await api("GET", "/v1/vms/life-clone/wait?state=exited&timeoutMs=120000");
    expect(ended.status, ended.text).toBe(200);
    expect(ended.json).toMatchObject({ state: "exited", stateReason: "the guest powered off" });
    expect((await api("POST", "/v1/vms/life-clone/start")).json).toMatchObject({
      state: "running",
    });
    expect(await guest("life-clone").succeed("hostname; cat /root/in-clone")).toBe(
      "life-clone\nmine\n",
    );
  });

  it("rolls back to the snapshot", async () => {
    const restored = await api("POST", `/v1/snapshots/${snapshotId}/restore`);
    expect(restored.status, restored.text).toBe(200);
    expect(restored.json).toMatchObject({ id: life.id, state: "running" });
    expect(await guest("life").succeed("hostname; cat /root/before")).toBe("life\nbefore\n");
    await guest("life").fail("test -e /root/after-snapshot");
  });

  it("keeps a snapshot usable after its VM and the snapshot under it are gone", async () => {
    // Taken on the rolled-back disk, a layer on "base": it must not need "base", nor life's folder.
    const again = await api("POST", "/v1/vms/life/snapshots", { name: "again" });
    expect(again.status, again.text).toBe(201);
    const againId = (again.json as { id: string }).id;
    // A VMM that dies is seen at once: the VM is crashed, with why.
    const clonePid = (
      (await api("GET", "/v1/vms/life-clone/stats")).json as { vmm: { pid: number } }
    ).vmm.pid;
    process.kill(clonePid, "SIGKILL");
    const crashed = await api("GET", "/v1/vms/life-clone/wait?state=crashed&timeoutMs=30000");
    expect(crashed.json).toMatchObject({
      state: "crashed",
      stateReason: "its VMM ended without the guest powering off",
    });
    for (const name of ["life", "life-clone"]) {
      expect((await api("DELETE", `/v1/vms/${name}`)).status).toBe(204);
    }
    expect((await api("DELETE", `/v1/snapshots/${snapshotId}`)).status).toBe(204);
    expect((await api("GET", `/v1/snapshots/${againId}`)).json).toMatchObject({
      vmId: null,
      vmName: "life",
    });
    const heir = await api("POST", "/v1/vms", { name: "heir", fromSnapshot: againId });
    expect(heir.status, heir.text).toBe(201);
    expect(await guest("heir").succeed("hostname; cat /root/before")).toBe("heir\nbefore\n");
    snapshotId = againId;
  });

  it("grows a running VM as far as its template's max: the guest sees the vCPUs, memory and disk", async () => {
    // Made from "again", a snapshot of life: linux-default's max (4 vCPUs, 4096 MiB) came along.
    const view = async () => {
      const [nproc, memTotalKiB, diskBytes] = (
        await guest("heir").succeed(
          "nproc; awk '/^MemTotal:/ { print $2 }' /proc/meminfo; lsblk -bndo SIZE /dev/vda",
        )
      )
        .trim()
        .split("\n")
        .map(Number);
      return { nproc, memTotalKiB: memTotalKiB ?? 0, diskBytes };
    };
    const before = await view();
    expect(before).toMatchObject({ nproc: 1, diskBytes: 8 * 2 ** 30 });
    const grown = await api("POST", "/v1/vms/heir/resize", {
      cpus: 2,
      memoryMiB: 768,
      diskGiB: 9,
    });
    expect(grown.status, grown.text).toBe(200);
    expect(grown.json).toMatchObject({
      state: "running",
      operation: null,
      spec: { cpus: 2, memoryMiB: 768, diskGiB: 9, max: { cpus: 4, memoryMiB: 4096 } },
    });
    const after = await view();
    expect(after).toMatchObject({ nproc: 2, diskBytes: 9 * 2 ** 30 });
    expect(after.memTotalKiB - before.memTotalKiB).toBeGreaterThan(250 * 1024);

    const refusals: [Record<string, number>, number, string][] = [
      [{ cpus: 1 }, 409, 'VM "heir" is running: a running VM only grows; cpus is 2, asked 1'],
      [{ cpus: 5 }, 409, "this VM allows at most 4 vCPUs; asked: 5 (cpus)"],
      [{ memoryMiB: 8192 }, 409, "this VM allows at most 4096 MiB of memory; asked: 8192"],
      [{ memoryMiB: 800 }, 400, "memory grows in whole steps of 128 MiB"],
      [{ diskGiB: 8 }, 409, "a disk cannot shrink"],
    ];
    for (const [body, status, message] of refusals) {
      const answer = await api("POST", "/v1/vms/heir/resize", body);
      expect(answer.status, answer.text).toBe(status);
      expect(answer.json).toMatchObject({ message: expect.stringContaining(message) });
    }
    expect((await api("GET", "/v1/vms/heir")).json).toMatchObject({
      state: "running",
      spec: { cpus: 2, memoryMiB: 768 },
    });
  });

  it("stops and deletes the last VM and snapshot, leaving nothing", async () => {
    const stopped = await api("POST", "/v1/vms/heir/stop", { graceMs: 60_000 });
    expect(stopped.json).toMatchObject({ state: "stopped", stateReason: null });
    expect((await api("GET", "/v1/vms/heir/stats")).json).toMatchObject({ vmm: null });
    expect((await api("DELETE", "/v1/vms/heir")).status).toBe(204);
    expect((await api("DELETE", `/v1/snapshots/${snapshotId}`)).status).toBe(204);
    expect((await api("GET", "/v1/vms")).json).toEqual([]);
    expect((await api("GET", "/v1/snapshots")).json).toEqual([]);
    expect(qemuPidsUnder(manager.stateDir)).toEqual([]);
    expect(readdirSync(join(manager.stateDir, "vms"))).toEqual([]);
    expect(readdirSync(join(manager.stateDir, "snapshots"))).toEqual([]);
    expect(existsSync(join(manager.stateDir, "vms", life.id))).toBe(false);
  });

  it("streamed every state change of the VM as it happened", async () => {
    await events.waitFor(
      (event) => event.event === "vm.deleted" && (event.data as { vmId: string }).vmId === life.id,
    );
    const lifeChanges = events.events
      .filter((event) => (event.data as { vmId: string }).vmId === life.id)
      .map((event) => {
        const { type, data } = event.data as { type: string; data: { to?: string } };
        return type === "vm.state" ? data.to : type;
      });
    expect(lifeChanges).toEqual([
      "creating",
      "created",
      "starting",
      "running",
      "paused",
      "running",
      "snapshot.created",
      "restoring",
      "running",
      "snapshot.created",
      "deleting",
      "vm.deleted",
    ]);
  });
});
