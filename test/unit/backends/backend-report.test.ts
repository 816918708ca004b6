// `corral doctor`'s per-backend report: a missing VMM says where to get it, a VMM found (here a
// stand-in script at CORRAL_FIRECRACKER that only prints a version) is reported with its version
// and, without a usable KVM, as unavailable with the reason. No VM is started.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { reportBackends } from "../../../src/backends/backend-report.ts";

let dir: string;
const saved = { ...process.env };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-report-"));
  delete process.env.CORRAL_ACCEL;
  delete process.env.CORRAL_FIRECRACKER;
  delete process.env.CORRAL_CLOUD_HYPERVISOR;
});

afterEach(() => {
  process.env = { ...saved };
  rmSync(dir, { recursive: true, force: true });
});

describe("reportBackends", () => {
  it("reports every backend, the default (qemu) first", async () => {
    process.env.CORRAL_FIRECRACKER = join(dir, "absent-firecracker");
    const reports = await reportBackends();
    expect(reports.map((r) => r.name)).toEqual(["qemu", "firecracker", "cloud-hypervisor"]);
    expect(reports[0]?.isDefault).toBe(true);
    const fc = reports[1];
    expect(fc?.binary).toEqual({
      isFound: false,
      detail: `CORRAL_FIRECRACKER=${join(dir, "absent-firecracker")} does not exist`,
    });
    expect(fc?.isUsable).toBe(false);
    expect(fc?.reason).toContain("firecracker-microvm/firecracker/releases");
  });

  it("a VMM found gives its version, and without a working KVM is unavailable", async () => {
    const fake = join(dir, "firecracker");
    writeFileSync(fake, "#!/bin/sh\necho 'Firecracker v1.17.0-stand-in'\n");
    chmodSync(fake, 0o755);
    process.env.CORRAL_FIRECRACKER = fake;
    const fc = (await reportBackends()).find((r) => r.name === "firecracker");
    expect(fc?.binary).toEqual({ isFound: true, detail: fake });
    expect(fc?.version).toBe("Firecracker v1.17.0-stand-in");
    // No kernel to probe with: KVM is not known to work (and on this host it does not).
    expect(fc?.isUsable).toBe(false);
    expect(fc?.reason).toMatch(/^firecracker needs KVM, and KVM is not usable: /);
  });
});
