// `corral doctor` on this host: the real checks and the real KVM probe.

import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";

interface Report {
  isReady: boolean;
  requirements: { id: string; isPresent: boolean }[];
  accelerator: {
    accelerator: string;
    isKvmUsable: boolean | undefined;
    source: string;
    reason: string;
  };
  fix?: string;
}

describe("corral doctor", () => {
  it("finds every requirement and decides on an accelerator by probing", async () => {
    const result = await runCli(["doctor", "--json", "--reprobe"]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.isReady).toBe(true);
    expect(report.requirements.every((req) => req.isPresent)).toBe(true);
    const { accelerator } = report;
    expect(["probe", "no-kvm-device"]).toContain(accelerator.source);
    expect(accelerator.isKvmUsable).toBe(accelerator.accelerator === "kvm");
  });

  it("says in its table which accelerator VMs will use", async () => {
    const result = await runCli(["doctor"]);
    expect(result.stdout).toMatch(/^CHECK +STATUS +DETAIL\n/);
    expect(result.stdout).toMatch(/\naccelerator +(kvm +KVM works|tcg +.*TCG will be used)/);
  });

  it("honours CORRAL_ACCEL", async () => {
    const result = await runCli(["doctor", "--json"], { CORRAL_ACCEL: "tcg" });
    const report = JSON.parse(result.stdout) as Report;
    expect(report.accelerator).toMatchObject({ accelerator: "tcg", source: "forced" });
  });

  it("exits 1 with the apt-get line when tools are missing", async () => {
    const result = await runCli(["doctor"], { PATH: "/nonexistent" });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/qemu-system-x86_64 +MISSING/);
    expect(result.stdout).toContain(
      "apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils vde2 mmdebstrap",
    );
  });

  it("says which networking mode the manager's VMs get: bridged as root, else user-mode", async () => {
    const result = await runCli(["doctor"]);
    expect(result.stdout).toMatch(
      process.getuid?.() === 0
        ? /\nnetworks +bridged +the manager's VMs get bridged networks \(root with CAP_NET_ADMIN/
        : /\nnetworks +user-mode +the manager's VMs get user-mode networking \(port forwards as QEMU hostfwd rules\): corral is not running as root/,
    );
  });
});
