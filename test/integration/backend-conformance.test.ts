// The Machine-level behaviour every backend must have (boot, commands, files, pause/resume,
// snapshot and restore), run once per backend that can run here: Firecracker and Cloud
// Hypervisor when their binary is found (PATH, CORRAL_FIRECRACKER, CORRAL_CLOUD_HYPERVISOR) and
// KVM works for them; QEMU too with CORRAL_CONFORMANCE_QEMU=1 (its own tests cover it, so it is
// left out by default). A backend that cannot run is reported as skipped, with the reason.

import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportBackends } from "../../src/backends/backend-report.ts";
import { defaultProbeKernel } from "../../src/images/image-cache.ts";
import { Machine } from "../../src/machine/machine.ts";

const wanted = new Set(["firecracker", "cloud-hypervisor"]);
if (process.env.CORRAL_CONFORMANCE_QEMU === "1") wanted.add("qemu");
const reports = (await reportBackends({ probeKernel: await defaultProbeKernel() })).filter(
  (report) => wanted.has(report.name),
);

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

for (const report of reports) {
  const title = report.isUsable
    ? `${report.name} backend conformance`
    : `${report.name} backend conformance (skipped: ${report.reason}; KVM: ${report.kvmReason})`;

  describe.skipIf(!report.isUsable)(title, () => {
    let dir: string;
    let machine: Machine;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), `corral-conformance-${report.name}-`));
      machine = new Machine({ backend: report.name, memoryMiB: 512 });
      await machine.waitForUnit("multi-user.target");
    }, 300_000);

    afterAll(async () => {
      await machine?.[Symbol.asyncDispose]();
      rmSync(dir, { recursive: true, force: true });
    });

    it("boots and runs commands: output, exit codes, stderr apart", async () => {
      expect(await machine.succeed("echo hello")).toBe("hello\n");
      const result = await machine.execute("echo out; echo err >&2; exit 3");
      expect(result).toMatchObject({ exitCode: 3, stdout: "out\n", stderr: "err\n" });
      await machine.fail("false");
    });

    it("copies files both ways, byte for byte", async () => {
      const payload = randomBytes(256 * 1024);
      const source = join(dir, "payload.bin");
      writeFileSync(source, payload);
      await machine.copyFromHost(source, "/root/payload.bin");
      expect((await machine.succeed("sha256sum /root/payload.bin")).split(" ")[0]).toBe(
        sha256(payload),
      );
      await machine.copyFromVm("/root/payload.bin", join(dir, "back.bin"));
      expect(sha256(readFileSync(join(dir, "back.bin")))).toBe(sha256(payload));
    });

    it("pauses and resumes: the guest goes on where it was", async () => {
      await machine.succeed("echo before > /root/pause-marker");
      await machine.pause();
      await machine.resume();
      expect(await machine.succeed("cat /root/pause-marker")).toBe("before\n");
    });

    it("snapshots, and a machine restored from it has the state of that moment", async () => {
      const snapshot = join(dir, "snapshot");
      await machine.succeed("echo in-the-snapshot > /root/marker");
      await machine.snapshot(snapshot);
      await machine.succeed("echo after > /root/marker");
      await using restored = new Machine({ backend: report.name, memoryMiB: 512, snapshot });
      await restored.start();
      expect(await restored.succeed("cat /root/marker")).toBe("in-the-snapshot\n");
      expect(await machine.succeed("cat /root/marker")).toBe("after\n");
    });
  });
}

describe("backend conformance suite", () => {
  it("considers each backend it was asked for", () => {
    expect(reports.map((report) => report.name).sort()).toEqual([...wanted].sort());
  });
});
