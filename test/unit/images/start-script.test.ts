import { spawnSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_MACHINE_TYPE } from "../../../src/backends/backend.ts";
import { renderStartScript, type StartScriptOptions } from "../../../src/images/start-script.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-script-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Runs the script with stub qemu binaries on PATH that print their arguments. */
async function runWithStubs(
  env: Record<string, string>,
  args: string[],
  options: Partial<StartScriptOptions> = {},
): Promise<{ status: number | null; lines: string[]; stderr: string }> {
  const bin = join(dir, "bin");
  await writeFile(
    join(dir, "run-t-vm"),
    renderStartScript({
      name: "t",
      recipeHash: "ab".repeat(32),
      memoryMiB: 512,
      cpus: 2,
      kernelParams: "console=ttyS0",
      ...options,
    }),
  );
  await chmod(join(dir, "run-t-vm"), 0o755);
  await rm(bin, { recursive: true, force: true });
  await mkdir(bin);
  for (const tool of ["qemu-system-x86_64", "qemu-img"]) {
    await writeFile(join(bin, tool), `#!/bin/sh\nprintf '%s\\n' "${tool}" "$@"\n`);
    await chmod(join(bin, tool), 0o755);
  }
  const result = spawnSync(join(dir, "run-t-vm"), args, {
    env: { PATH: `${bin}:/usr/bin:/bin`, ...env },
    encoding: "utf8",
  });
  return { status: result.status, lines: result.stdout.trim().split("\n"), stderr: result.stderr };
}

describe("run-<name>-vm start script", () => {
  it("creates the overlay in $TMPDIR and passes NixOS-style settings to QEMU", async () => {
    const state = join(dir, "state");
    await mkdir(state);
    const { status, lines } = await runWithStubs(
      { TMPDIR: state, USE_TMPDIR: "1", QEMU_OPTS: "-smp 2", QEMU_KERNEL_PARAMS: "quiet=no" },
      ["-accel", "tcg", "arg with space"],
    );
    expect(status).toBe(0);
    expect(lines[0]).toBe("qemu-img");
    expect(lines).toContain(join(dir, "root.qcow2"));
    const qemu = lines.slice(lines.indexOf("qemu-system-x86_64"));
    expect(qemu).toContain(
      `if=none,id=root,file=${state}/t.qcow2,format=qcow2,cache=unsafe,discard=unmap,werror=report`,
    );
    expect(qemu).toContain("console=ttyS0 quiet=no");
    // The QEMU backend runs an image through its script only for the machine the script runs.
    expect(qemu[qemu.indexOf("-machine") + 1]).toBe(DEFAULT_MACHINE_TYPE);
    expect(qemu.slice(-5)).toEqual(["-smp", "2", "-accel", "tcg", "arg with space"]);
  });

  it("plugs a machine script's VLAN NICs into the switches named by QEMU_VDE_SOCKET_<n>", async () => {
    const state = join(dir, "state");
    await mkdir(state);
    const options = {
      imageDir: join(dir, "image dir"),
      vlanNics: [{ vlan: 1, mac: "52:54:00:12:01:02" }],
    };
    const missing = await runWithStubs({ TMPDIR: state, USE_TMPDIR: "1" }, [], options);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("QEMU_VDE_SOCKET_1: is not set");
    const { status, lines } = await runWithStubs(
      { TMPDIR: state, USE_TMPDIR: "1", QEMU_VDE_SOCKET_1: "/run/vde1.ctl" },
      [],
      options,
    );
    expect(status).toBe(0);
    expect(lines).toContain(join(dir, "image dir", "root.qcow2"));
    expect(lines).toContain("virtio-net-pci,netdev=vlan1,mac=52:54:00:12:01:02");
    expect(lines).toContain("vde,id=vlan1,sock=/run/vde1.ctl");
  });
});
