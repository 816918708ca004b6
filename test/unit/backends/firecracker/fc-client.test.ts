// Firecracker's client: every request it can send checked against the official spec (path,
// method, body schema), the fake's answers checked against the spec's response schemas, and
// its error handling under the spec's state rules, against test/fakes/fake-firecracker.ts.

import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FcClient } from "../../../../src/backends/firecracker/fc-client.ts";
import { VmmApiError, type VmmRequest } from "../../../../src/backends/vmm-api.ts";
import { Deadline } from "../../../../src/deadline.ts";
import { ErrorCodes } from "../../../../src/errors.ts";
import {
  FakeFirecracker,
  LOAD_NOT_ALLOWED,
  NOT_PAUSED,
  POST_BOOT,
  PRE_BOOT,
} from "../../../fakes/fake-firecracker.ts";
import { loadSpec } from "../../../helpers/vmm-spec.ts";

const deadline = () => new Deadline("fc test", { timeout: 5000 }, 5000);
const spec = loadSpec("firecracker");

let dir: string;
let fake: FakeFirecracker;
let client: FcClient;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "corral-fc-"));
  fake = await FakeFirecracker.listen(join(dir, "api.sock"));
  client = new FcClient({ socketPath: fake.socketPath, record: true });
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

/** Configures, boots, pauses and snapshots a VM: every request of a VM's life. */
async function wholeLife(c: FcClient): Promise<void> {
  const d = deadline();
  await c.putLogger(d, { log_path: join(dir, "fc.log"), level: "Info", show_level: true });
  await c.putMetrics(d, { metrics_path: join(dir, "metrics.json") });
  await c.putBootSource(d, {
    kernel_image_path: "/images/vmlinux",
    initrd_path: "/images/initrd",
    boot_args: "console=ttyS0 reboot=k panic=1",
  });
  await c.putMachineConfig(d, { vcpu_count: 2, mem_size_mib: 512, smt: false });
  await c.putDrive(d, {
    drive_id: "root",
    is_root_device: false,
    path_on_host: "/vm/root.raw",
    is_read_only: false,
    cache_type: "Unsafe",
    io_engine: "Sync",
  });
  await c.putNetworkInterface(d, {
    iface_id: "eth0",
    host_dev_name: "corral-tap0",
    guest_mac: "52:54:00:12:01:01",
  });
  await c.putVsock(d, { guest_cid: 3, uds_path: join(dir, "vsock.sock") });
  await c.putSerial(d, { serial_out_path: join(dir, "console.log") });
  await c.putBalloon(d, { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 });
  await c.action(d, "InstanceStart");
  expect((await c.describeInstance(d)).state).toBe("Running");
  expect(await c.machineConfig(d)).toMatchObject({ vcpu_count: 2, mem_size_mib: 512 });
  expect((await c.version(d)).firecracker_version).toBe("1.17.0-fake");
  expect(await c.balloon(d)).toMatchObject({ amount_mib: 0 });
  await c.patchBalloon(d, { amount_mib: 128 });
  await c.patchBalloonStatistics(d, { stats_polling_interval_s: 2 });
  expect((await c.balloonStatistics(d)).target_mib).toBe(128);
  await c.patchDrive(d, { drive_id: "root", path_on_host: "/vm/root.raw" });
  await c.action(d, "FlushMetrics");
  await c.setVmState(d, "Paused");
  await c.createSnapshot(d, {
    snapshot_path: join(dir, "vmstate"),
    mem_file_path: join(dir, "memory"),
    snapshot_type: "Full",
  });
  await c.setVmState(d, "Resumed");
  await c.action(d, "SendCtrlAltDel");
}

describe("Firecracker client against the official spec", () => {
  it("sends only requests the spec allows, and the fake answers as the spec says", async () => {
    await wholeLife(client);
    const restored = await FakeFirecracker.listen(join(dir, "api2.sock"));
    const second = new FcClient({ socketPath: restored.socketPath, record: true });
    try {
      await second.loadSnapshot(deadline(), {
        snapshot_path: join(dir, "vmstate"),
        mem_backend: { backend_type: "File", backend_path: join(dir, "memory") },
        resume_vm: false,
        network_overrides: [{ iface_id: "eth0", host_dev_name: "corral-tap1" }],
        vsock_override: { uds_path: join(dir, "vsock2.sock") },
      });
      expect(restored.state).toBe("Paused");
      const sent = [...(client.api.sent ?? []), ...(second.api.sent ?? [])];
      const problems = sent
        .map((r: VmmRequest) => [r, spec.requestProblem(r.method, r.path, r.body)] as const)
        .filter(([, problem]) => problem !== undefined);
      expect(problems).toEqual([]);
      const operations = new Set(sent.map((r) => `${r.method} ${r.path}`));
      // Every method of the client was called.
      for (const expected of [
        "PUT /logger",
        "PUT /metrics",
        "PUT /boot-source",
        "PUT /machine-config",
        "GET /machine-config",
        "PUT /drives/root",
        "PATCH /drives/root",
        "PUT /network-interfaces/eth0",
        "PUT /vsock",
        "PUT /serial",
        "PUT /balloon",
        "PATCH /balloon",
        "GET /balloon",
        "GET /balloon/statistics",
        "PATCH /balloon/statistics",
        "PUT /actions",
        "GET /",
        "GET /version",
        "PATCH /vm",
        "PUT /snapshot/create",
        "PUT /snapshot/load",
      ]) {
        expect(operations).toContain(expected);
      }
      for (const entry of [...fake.log, ...restored.log]) {
        expect(spec.replyProblem(entry.method, entry.path, entry.status, entry.reply)).toBe(
          undefined,
        );
      }
      expect(fake.log.every((entry) => entry.status < 300)).toBe(true);
    } finally {
      second.close();
      await restored.close();
    }
  });

  it("the check rejects bodies, paths and methods the spec does not allow", () => {
    const rejected: [string, string, unknown][] = [
      ["PUT", "/machine-config", { vcpu_count: 0, mem_size_mib: 128 }],
      ["PUT", "/machine-config", { vcpus: 2, mem_size_mib: 128 }],
      ["PUT", "/machine-config", { vcpu_count: 2, mem_size_mib: "512" }],
      ["PUT", "/drives/root", { drive_id: "root", path_on_host: "/r", is_read_only: false }],
      ["PUT", "/actions", { action_type: "Start" }],
      ["PATCH", "/vm", { state: "Stopped" }],
      ["PUT", "/vsock", { guest_cid: 2, uds_path: "/v.sock" }],
      ["PUT", "/snapshot/create", { snapshot_path: "/s" }],
      ["PUT", "/boot-source", undefined],
      ["GET", "/actions", undefined],
      ["PUT", "/vm.create", { payload: {} }],
    ];
    for (const [method, path, body] of rejected) {
      expect(spec.requestProblem(method, path, body), `${method} ${path}`).toBeTypeOf("string");
    }
    expect(spec.requestProblem("PUT", "/actions", { action_type: "InstanceStart" })).toBe(
      undefined,
    );
  });

  it("a body the spec rejects comes back as the VMM's 400, in a VmmApiError", async () => {
    const error = await refusal(
      client.putMachineConfig(deadline(), { vcpu_count: 64, mem_size_mib: 128 }),
    );
    expect(error.code).toBe(ErrorCodes.VMM_API_ERROR);
    expect(error.status).toBe(400);
    expect(error.vmmMessage).toMatch(/spec rejects.*vcpu_count/);
    expect(error.message).toContain("Firecracker refused PUT /machine-config (HTTP 400)");
  });
});

describe("Firecracker client under the spec's state rules", () => {
  it("a pre-boot resource after InstanceStart is a CONFLICT with Firecracker's message", async () => {
    await client.putBootSource(deadline(), { kernel_image_path: "/k" });
    await client.action(deadline(), "InstanceStart");
    const error = await refusal(
      client.putMachineConfig(deadline(), { vcpu_count: 1, mem_size_mib: 128 }),
    );
    expect(error.code).toBe(ErrorCodes.CONFLICT);
    expect(error.vmmMessage).toBe(POST_BOOT);
  });

  it("pausing before InstanceStart is a CONFLICT", async () => {
    const error = await refusal(client.setVmState(deadline(), "Paused"));
    expect(error.code).toBe(ErrorCodes.CONFLICT);
    expect(error.vmmMessage).toBe(PRE_BOOT);
  });

  it("a snapshot of a running VM is refused; of a paused one, taken", async () => {
    await client.putBootSource(deadline(), { kernel_image_path: "/k" });
    await client.action(deadline(), "InstanceStart");
    const params = { snapshot_path: join(dir, "s"), mem_file_path: join(dir, "m") };
    const error = await refusal(client.createSnapshot(deadline(), params));
    expect(error.code).toBe(ErrorCodes.CONFLICT);
    expect(error.vmmMessage).toBe(NOT_PAUSED);
    await client.setVmState(deadline(), "Paused");
    await client.createSnapshot(deadline(), params);
  });

  it("a snapshot loads only into a process with nothing configured", async () => {
    await client.putLogger(deadline(), { level: "Info" });
    await client.putBootSource(deadline(), { kernel_image_path: "/k" });
    const error = await refusal(
      client.loadSnapshot(deadline(), {
        snapshot_path: join(dir, "s"),
        mem_backend: { backend_type: "File", backend_path: join(dir, "m") },
      }),
    );
    expect(error.code).toBe(ErrorCodes.CONFLICT);
    expect(error.vmmMessage).toBe(LOAD_NOT_ALLOWED);
  });

  it("InstanceStart without a kernel is the VMM's error, not a state conflict", async () => {
    const error = await refusal(client.action(deadline(), "InstanceStart"));
    expect(error.code).toBe(ErrorCodes.VMM_API_ERROR);
    expect(error.vmmMessage).toMatch(/without kernel configuration/);
  });

  it("a socket nobody listens on is a VMM_API_ERROR without a status", async () => {
    const absent = new FcClient({ socketPath: join(dir, "absent.sock") });
    try {
      const error = await refusal(absent.describeInstance(deadline()));
      expect(error.code).toBe(ErrorCodes.VMM_API_ERROR);
      expect(error.status).toBe(undefined);
      expect(error.message).toMatch(/absent\.sock did not answer/);
    } finally {
      absent.close();
    }
  });

  it("a VMM that accepts but never answers fails at the deadline", async () => {
    const silent = createServer(() => {});
    silent.listen(join(dir, "silent.sock"));
    await once(silent, "listening");
    const slow = new FcClient({ socketPath: join(dir, "silent.sock") });
    try {
      const started = performance.now();
      const error = await slow
        .describeInstance(new Deadline("asking a silent VMM", { timeout: 200 }, 200))
        .catch((caught: unknown) => caught);
      expect((error as { code?: string }).code).toBe(ErrorCodes.TIMEOUT);
      expect((error as Error).message).toMatch(/^asking a silent VMM: timed out after 200 ms/);
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      slow.close();
      silent.close();
    }
  });
});
