// The built-in templates and imported images through the VM API on a real daemon, one small VM
// at a time: linux-microvm boots corral's image to its shell (and cannot grow while it runs);
// windows-default with no OS reaches OVMF (in the VM's console log), cannot grow while it runs
// without corral's guest shell, and is forced off after its grace period; the Windows shorthand
// refuses 1 vCPU; an imported raw disk boots through its own boot loader, and the image cannot be
// deleted while a VM is made from it.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { temporaryDir } from "../helpers/cli.ts";
import { serialBootDisk } from "../helpers/image-files.ts";
import {
  type Api,
  type ManagerDaemon,
  qemuPidsUnder,
  startManagerDaemon,
} from "../helpers/manager.ts";

interface VmJson {
  id: string;
  name: string;
  state: string;
  stateReason: string | null;
}

let manager: ManagerDaemon;
let api: Api;

beforeAll(async () => {
  manager = await startManagerDaemon();
  api = manager.api;
});

afterAll(async () => {
  await manager?.[Symbol.asyncDispose]();
});

/** Waits until VM `vm`'s console log (in its folder) matches `pattern`; returns the match. */
async function consoleMatch(vm: VmJson, pattern: RegExp, timeoutMs: number): Promise<string> {
  const log = join(manager.stateDir, "vms", vm.id, "console.log");
  for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(500)) {
    const match = existsSync(log) ? pattern.exec(readFileSync(log, "latin1")) : null;
    if (match) return match[0];
  }
  const tail = existsSync(log) ? readFileSync(log, "latin1").slice(-2000) : "(no console log)";
  throw new Error(`${vm.name}: no ${pattern} in its console log after ${timeoutMs} ms:\n${tail}`);
}

/** Creates a VM and checks the answer; returns the VM. */
async function create(path: string, body: Record<string, unknown>): Promise<VmJson> {
  const answer = await api("POST", path, body);
  expect(answer.status, answer.text).toBe(201);
  return answer.json as VmJson;
}

async function remove(name: string): Promise<void> {
  expect((await api("DELETE", `/v1/vms/${name}`)).status).toBe(204);
}

describe("built-in templates through the API", () => {
  it("linux-microvm boots corral's image to its shell on virtio-mmio", async () => {
    const vm = await create("/v1/vms", { name: "micro", template: "linux-microvm" });
    expect(vm).toMatchObject({
      state: "running",
      spec: { machineType: "microvm", cpus: 1, memoryMiB: 256, diskGiB: 4 },
    });
    const machine = manager.daemon.manager.vms.machineOf("micro");
    expect(await machine?.succeed("hostname; ls /sys/bus/pci/devices | wc -l")).toBe("micro\n0\n");
    // No bus to plug vCPUs or memory into.
    const grow = await api("POST", "/v1/vms/micro/resize", { cpus: 2 });
    expect(grow.status, grow.text).toBe(501);
    expect(grow.json).toMatchObject({ code: ErrorCodes.UNSUPPORTED });
    const stopped = await api("POST", "/v1/vms/micro/stop");
    expect(stopped.json).toMatchObject({ state: "stopped", stateReason: null });
    await remove("micro");
  });

  it("windows-default with no OS reaches OVMF and is forced off after its grace period", async () => {
    const vm = await create("/v1/vms/windows", { name: "win", memoryMiB: 1024 });
    // No guest agent answers without an OS: the VM runs once its VMM does.
    expect(vm).toMatchObject({
      state: "running",
      spec: { machineType: "q35", firmware: "uefi", image: null, cpus: 2, diskGiB: 64 },
    });
    const folder = join(manager.stateDir, "vms", vm.id);
    // OVMF finds nothing to boot on the empty disk (nor over the network) and opens its shell.
    expect(await consoleMatch(vm, /UEFI Interactive Shell/, 120_000)).toBe(
      "UEFI Interactive Shell",
    );
    expect(existsSync(join(folder, "uefi-vars.fd"))).toBe(true);
    const disk = JSON.parse(
      execFileSync("qemu-img", ["info", "-U", "--output=json", join(folder, "root.qcow2")], {
        encoding: "utf8",
      }),
    );
    expect(disk["virtual-size"]).toBe(64 * 2 ** 30);

    const grow = await api("POST", "/v1/vms/win/resize", { cpus: 4 });
    expect(grow.json).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("a running VM grows only with corral's guest shell in it"),
    });
    const stopped = await api("POST", "/v1/vms/win/stop", { graceMs: 3000 });
    expect(stopped.status, stopped.text).toBe(200);
    expect(stopped.json).toMatchObject({
      state: "stopped",
      stateReason: "the guest did not power off within 3000 ms: forced off",
    });
    await remove("win");
  });

  it("refuses a Windows VM with 1 vCPU, saying the minimum", async () => {
    const answer = await api("POST", "/v1/vms/windows", { name: "tiny", cpus: 1 });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: "template windows-default needs at least 2 vCPUs; asked: 1 (cpus)",
    });
    expect((await api("GET", "/v1/vms/tiny")).status).toBe(404);
  });
});

describe("an imported disk image through the API", () => {
  it("boots by its own boot loader, and cannot be deleted while a VM is made from it", async () => {
    const file = join(temporaryDir("corral-import-mbr-"), "mbr.raw");
    serialBootDisk(file, "corral-mbr-ok");
    const imported = await api("POST", "/v1/images", { import: { path: file, name: "mbr" } });
    expect(imported.status, imported.text).toBe(201);
    expect(imported.json).toMatchObject({ name: "mbr", kind: "imported", format: "raw" });

    const vm = await create("/v1/vms", { name: "boot-mbr", image: "mbr", start: false });
    expect(vm).toMatchObject({ state: "created", imageId: (imported.json as { id: string }).id });
    const inUse = await api("DELETE", "/v1/images/mbr");
    expect(inUse.status).toBe(409);
    expect(inUse.json).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: 'image "mbr" is in use by VM "boot-mbr": delete them first',
    });

    const started = await api("POST", "/v1/vms/boot-mbr/start");
    expect(started.json).toMatchObject({ state: "running" });
    expect(await consoleMatch(vm, /corral-mbr-ok/, 60_000)).toBe("corral-mbr-ok");
    expect((await api("POST", "/v1/vms/boot-mbr/stop", { force: true })).json).toMatchObject({
      state: "stopped",
    });
    expect((await api("DELETE", "/v1/images/mbr")).status).toBe(409);
    await remove("boot-mbr");
    expect((await api("DELETE", "/v1/images/mbr")).status).toBe(200);
    expect(qemuPidsUnder(manager.stateDir)).toEqual([]);
  });
});
