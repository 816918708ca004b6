// `corral serve` as a separate process: VMs outlive it (killed with SIGKILL, or stopped with
// SIGTERM), the next one re-attaches to the VMs that run and marks the one whose VMM died as
// crashed before it answers; `--stop-all` stops them when it stops.

import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, onTestFinished } from "vitest";
import { Machine } from "../../src/machine/machine.ts";
import { Store } from "../../src/store/store.ts";
import { temporaryDir } from "../helpers/cli.ts";
import { apiOn, killVmsUnder, spawnServe } from "../helpers/manager.ts";

interface VmJson {
  id: string;
  name: string;
  state: string;
  stateReason: string | null;
}

/** Whether process `pid` runs: a zombie (dead, not yet reaped by init) does not. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

async function untilDead(pid: number): Promise<void> {
  while (isRunning(pid)) await sleep(50);
}

describe("corral serve restarting", () => {
  it("re-attaches to live VMs after kill -9, marks one whose VMM died crashed; --stop-all stops them", async () => {
    const stateDir = temporaryDir("corral-restart-");
    onTestFinished(() => killVmsUnder(stateDir));
    const api = apiOn(join(stateDir, "corral.sock"));
    const vmmPid = async (name: string) =>
      ((await api("GET", `/v1/vms/${name}/stats`)).json as { vmm: { pid: number } }).vmm.pid;

    let serve = await spawnServe(stateDir);
    const created = await Promise.all(
      ["keep", "lost"].map((name) => api("POST", "/v1/vms", { name, cpus: 1, memoryMiB: 512 })),
    );
    expect(created.map((answer) => [answer.status, (answer.json as VmJson).state])).toEqual([
      [201, "running"],
      [201, "running"],
    ]);
    const [keep, lost] = created.map((answer) => answer.json as VmJson) as [VmJson, VmJson];
    const keepPid = await vmmPid("keep");
    const lostPid = await vmmPid("lost");

    serve.kill("SIGKILL");
    await once(serve, "exit");
    process.kill(lostPid, "SIGKILL");
    await untilDead(lostPid);
    expect(isRunning(keepPid)).toBe(true);

    serve = await spawnServe(stateDir);
    const listed = ((await api("GET", "/v1/vms")).json as VmJson[]).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    expect(listed.map((vm) => [vm.id, vm.name, vm.state])).toEqual([
      [keep.id, "keep", "running"],
      [lost.id, "lost", "crashed"],
    ]);
    expect(listed[1]?.stateReason).toMatch(/its qemu process \(pid \d+\) has exited/);
    expect(await vmmPid("keep")).toBe(keepPid);
    expect((await api("POST", "/v1/vms/keep/pause")).json).toMatchObject({ state: "paused" });
    expect((await api("POST", "/v1/vms/keep/resume")).json).toMatchObject({ state: "running" });

    // SIGTERM: the daemon stops cleanly and the VM runs on; its guest answers another process.
    serve.kill("SIGTERM");
    expect((await once(serve, "exit"))[0]).toBe(0);
    expect(isRunning(keepPid)).toBe(true);
    {
      await using machine = await Machine.attach(join(stateDir, "vms", keep.id));
      expect(await machine.succeed("hostname")).toBe("keep\n");
    }

    serve = await spawnServe(stateDir, ["--stop-all"]);
    expect((await api("GET", "/v1/vms/keep")).json).toMatchObject({ state: "running" });
    serve.kill("SIGTERM");
    expect((await once(serve, "exit"))[0]).toBe(0);
    expect(isRunning(keepPid)).toBe(false);
    const store = await Store.open({ dir: stateDir });
    try {
      const rows = store.vms.list().sort((a, b) => a.name.localeCompare(b.name));
      expect(rows.map((vm) => [vm.name, vm.state, vm.operation])).toEqual([
        ["keep", "stopped", null],
        ["lost", "crashed", null],
      ]);
    } finally {
      store.close();
    }
  });
});
