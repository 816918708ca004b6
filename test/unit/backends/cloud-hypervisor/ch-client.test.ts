// Cloud Hypervisor's client: every request it can send checked against the official spec (path,
// method, body schema), the fake's answers checked against the spec's response schemas, and its
// error handling under vm.rs's state machine, against test/fakes/fake-cloud-hypervisor.ts.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ChClient } from "../../../../src/backends/cloud-hypervisor/ch-client.ts";
import type { ChVmConfig } from "../../../../src/backends/cloud-hypervisor/ch-types.ts";
import { VmmApiError } from "../../../../src/backends/vmm-api.ts";
import { Deadline } from "../../../../src/deadline.ts";
import { ErrorCodes } from "../../../../src/errors.ts";
import { FakeCloudHypervisor } from "../../../fakes/fake-cloud-hypervisor.ts";
import { loadSpec } from "../../../helpers/vmm-spec.ts";

const deadline = () => new Deadline("ch test", { timeout: 5000 }, 5000);
const spec = loadSpec("cloud-hypervisor");
const MiB = 1024 * 1024;

let dir: string;
let fake: FakeCloudHypervisor;
let client: ChClient;

const config = (): ChVmConfig => ({
  payload: {
    kernel: "/images/vmlinux",
    initramfs: "/images/initrd",
    cmdline: "console=ttyS0 root=/dev/vda",
  },
  cpus: { boot_vcpus: 1, max_vcpus: 4 },
  memory: { size: 512 * MiB, hotplug_size: 512 * MiB },
  disks: [{ id: "root", path: "/vm/root.qcow2", image_type: "Qcow2", backing_files: true }],
  net: [{ tap: "corral-tap0", mac: "52:54:00:12:01:01", id: "net0" }],
  rng: { src: "/dev/urandom" },
  serial: { mode: "File", file: join(dir, "console.log") },
  console: { mode: "Off" },
  vsock: { cid: 3, socket: join(dir, "vsock.sock") },
});

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "corral-ch-"));
  fake = await FakeCloudHypervisor.listen(join(dir, "api.sock"));
  client = new ChClient({ socketPath: fake.socketPath, record: true });
});

afterEach(async () => {
  client.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<VmmApiError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(VmmApiError);
  return error as VmmApiError;
}

describe("Cloud Hypervisor client against the official spec", () => {
  it("sends only requests the spec allows, and the fake answers as the spec says", async () => {
    const d = deadline();
    expect((await client.ping(d)).version).toBe("v53.0-fake");
    await client.create(d, { ...config(), vsock: undefined });
    await client.boot(d);
    expect((await client.info(d)).state).toBe("Running");
    await client.resize(d, { desired_vcpus: 2, desired_ram: 768 * MiB });
    await client.resizeDisk(d, { id: "root", desired_size: 4 * 1024 * MiB });
    expect(
      await client.add(d, "disk", { id: "data", path: "/vm/data.raw", readonly: true }),
    ).toEqual({ id: "data", bdf: "0000:00:06.0" });
    await client.add(d, "net", { id: "net1", tap: "corral-tap1", mac: "52:54:00:12:02:01" });
    await client.add(d, "fs", {
      tag: "shared",
      socket: "/run/virtiofsd.sock",
      num_queues: 1,
      queue_size: 1024,
    });
    await client.add(d, "pmem", { file: "/vm/pmem.img", discard_writes: true });
    await client.add(d, "device", { path: "/sys/bus/pci/devices/0000:01:00.0/", id: "vfio0" });
    await client.add(d, "vsock", { cid: 3, socket: join(dir, "v.sock") });
    await client.removeDevice(d, { id: "data" });
    await client.pause(d);
    await client.snapshot(d, { destination_url: `file://${join(dir, "snap")}` });
    await client.resume(d);
    await client.reboot(d);
    await client.powerButton(d);
    await client.shutdown(d);
    await client.boot(d);
    await client.shutdown(d);
    await client.delete(d);
    await client.restore(d, { source_url: `file://${join(dir, "snap")}`, resume: false });
    expect((await client.info(d)).state).toBe("Paused");
    await client.delete(d);
    await client.shutdownVmm(d);

    const sent = client.api.sent ?? [];
    const problems = sent
      .map((r) => [r.method, r.path, spec.requestProblem(r.method, r.path, r.body)] as const)
      .filter(([, , problem]) => problem !== undefined);
    expect(problems).toEqual([]);
    const operations = new Set(sent.map((r) => `${r.method} ${r.path}`));
    for (const path of [
      "/vm.create",
      "/vm.boot",
      "/vm.shutdown",
      "/vm.reboot",
      "/vm.pause",
      "/vm.resume",
      "/vm.power-button",
      "/vm.delete",
      "/vm.resize",
      "/vm.resize-disk",
      "/vm.add-disk",
      "/vm.add-net",
      "/vm.add-fs",
      "/vm.add-pmem",
      "/vm.add-device",
      "/vm.add-vsock",
      "/vm.remove-device",
      "/vm.snapshot",
      "/vm.restore",
      "/vmm.shutdown",
    ]) {
      expect(operations).toContain(`PUT ${path}`);
    }
    expect(operations).toContain("GET /vm.info");
    expect(operations).toContain("GET /vmm.ping");
    for (const entry of fake.log.filter((e) => e.status < 300)) {
      expect(spec.replyProblem(entry.method, entry.path, entry.status, entry.reply)).toBe(
        undefined,
      );
    }
  });

  it("the check rejects bodies, paths and methods the spec does not allow", () => {
    const rejected: [string, string, unknown][] = [
      ["PUT", "/vm.create", { cpus: { boot_vcpus: 1, max_vcpus: 1 } }],
      ["PUT", "/vm.create", { payload: { kernel: "/k" }, cpus: { boot_vcpus: 0, max_vcpus: 1 } }],
      ["PUT", "/vm.create", { payload: { kernel: "/k" }, memory: { size_mib: 512 } }],
      ["PUT", "/vm.create", { payload: { kernel: "/k" }, serial: { mode: "Stdout" } }],
      ["PUT", "/vm.create", { payload: { kernel: "/k" }, vsock: { cid: 2, socket: "/v" } }],
      ["PUT", "/vm.resize", { desired_vcpus: "2" }],
      ["PUT", "/vm.restore", { resume: true }],
      ["PUT", "/vm.add-fs", { tag: "shared", socket: "/s" }],
      ["GET", "/vm.boot", undefined],
      ["PUT", "/boot-source", { kernel_image_path: "/k" }],
    ];
    for (const [method, path, body] of rejected) {
      expect(spec.requestProblem(method, path, body), `${method} ${path}`).toBeTypeOf("string");
    }
    expect(spec.requestProblem("PUT", "/vm.create", { payload: { kernel: "/k" } })).toBe(undefined);
  });

  it("a body the spec rejects comes back as the VMM's 400, in a VmmApiError", async () => {
    const bad = { ...config(), cpus: { boot_vcpus: 0, max_vcpus: 1 } };
    const error = await refusal(client.create(deadline(), bad));
    expect(error.code).toBe(ErrorCodes.VMM_API_ERROR);
    expect(error.status).toBe(400);
    expect(error.vmmMessage).toMatch(/spec rejects.*boot_vcpus/);
    expect(error.message).toContain("Cloud Hypervisor refused PUT /vm.create (HTTP 400)");
  });
});

describe("Cloud Hypervisor client under vm.rs's state machine", () => {
  it("actions before vm.create are 404: a CONFLICT with the VMM's words", async () => {
    for (const call of [
      client.boot(deadline()),
      client.pause(deadline()),
      client.info(deadline()),
    ]) {
      const error = await refusal(call);
      expect(error.code).toBe(ErrorCodes.CONFLICT);
      expect(error.status).toBe(404);
      expect(error.vmmMessage).toBe("fake: the VM is not created");
    }
  });

  it("an action the state forbids is 405: a CONFLICT", async () => {
    await client.create(deadline(), config());
    const error = await refusal(client.pause(deadline()));
    expect(error.code).toBe(ErrorCodes.CONFLICT);
    expect(error.status).toBe(405);
    expect(error.vmmMessage).toContain("InvalidStateTransition(Created, Paused)");
    await client.boot(deadline());
    await client.pause(deadline());
    const again = await refusal(client.pause(deadline()));
    expect(again.status).toBe(405);
    await client.resume(deadline());
    const resumed = await refusal(client.resume(deadline()));
    expect(resumed.vmmMessage).toContain("InvalidStateTransition(Running, Running)");
  });

  it("a snapshot needs a paused VM; a restore needs no VM yet", async () => {
    await client.create(deadline(), config());
    await client.boot(deadline());
    const url = `file://${join(dir, "snap")}`;
    expect((await refusal(client.snapshot(deadline(), { destination_url: url }))).status).toBe(405);
    await client.pause(deadline());
    await client.snapshot(deadline(), { destination_url: url });
    const error = await refusal(client.restore(deadline(), { source_url: url }));
    expect(error.code).toBe(ErrorCodes.CONFLICT);
    expect(error.status).toBe(404);
  });

  it("a device id taken is 409, an unknown disk 404, a resize past max_vcpus the VMM's error", async () => {
    await client.create(deadline(), config());
    await client.boot(deadline());
    await client.add(deadline(), "disk", { id: "data", path: "/d" });
    expect((await refusal(client.add(deadline(), "disk", { id: "data", path: "/e" }))).status).toBe(
      409,
    );
    expect(
      (await refusal(client.resizeDisk(deadline(), { id: "nope", desired_size: 1 }))).status,
    ).toBe(404);
    const error = await refusal(client.resize(deadline(), { desired_vcpus: 8 }));
    expect(error.code).toBe(ErrorCodes.VMM_API_ERROR);
    expect(error.status).toBe(500);
  });
});
