import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { VmSpec } from "../../../../src/backends/backend.ts";
import { qemuCapabilities, qemuCommand } from "../../../../src/backends/qemu/qemu-command.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-command-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function imageSpec(overrides: Partial<VmSpec> = {}): VmSpec {
  return {
    name: "t",
    stateDir: dir,
    ownership: "owned",
    boot: {
      kind: "image",
      imageId: "debian-12-abc",
      recipeHash: "abc",
      dir,
      startScript: join(dir, "run-debian-12-vm"),
      kernel: join(dir, "vmlinuz"),
      direct: {
        initrd: join(dir, "initrd"),
        rootDisk: join(dir, "base.qcow2"),
        kernelParams: "console=ttyS0",
        memoryMiB: 1024,
        cpus: 2,
      },
    },
    accelerator: "tcg",
    nics: [{ vlan: 1, switchSocket: "/vde1", mac: "52:54:00:12:01:01" }],
    kernelParams: [],
    allowReboot: false,
    env: {},
    ...overrides,
  };
}

describe("qemuCommand", () => {
  it("runs a corral image on plain q35 through its start script, drives appended", async () => {
    const command = await qemuCommand(
      imageSpec({
        machine: { type: "q35", firmware: "bios", hypervEnlightenments: false },
        drives: [{ path: "/seed.iso", format: "raw", media: "cdrom", readOnly: true }],
        rootDisk: join(dir, "root.qcow2"),
      }),
    );
    expect(command.file).toBe(join(dir, "run-debian-12-vm"));
    expect(command.args).toContain("ide-cd,drive=drive1,bootindex=2");
    expect(command.env).toMatchObject({ NIX_DISK_IMAGE: join(dir, "root.qcow2"), TMPDIR: dir });
    expect(command.runtime.nics).toHaveLength(1);
  });

  it("gives a foreign start script only the TAP NICs: it brings its VLAN NICs itself", async () => {
    const tap = { kind: "tap" as const, ifname: "crl-tap", mac: "52:54:00:ab:cd:ef" };
    const vlan = { vlan: 1, switchSocket: "/vde1", mac: "52:54:00:12:01:01" };
    const command = await qemuCommand(
      imageSpec({ boot: { kind: "start-script", path: "/run-a-vm" }, nics: [vlan, tap] }),
    );
    expect(command.runtime.nics).toEqual([tap]);
    expect(command.env.QEMU_VDE_SOCKET_1).toBe("/vde1");
    expect(Object.keys(command.env).filter((key) => key.startsWith("QEMU_VDE"))).toHaveLength(1);
    const image = await qemuCommand(imageSpec({ nics: [vlan, tap] }));
    expect(image.runtime.nics).toEqual([vlan, tap]);
  });

  it("starts QEMU itself for a microvm, with the image's root overlay made once in the state folder", async () => {
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(dir, "base.qcow2"), "1G"]);
    const spec = imageSpec({
      machine: { type: "microvm", firmware: "bios", hypervEnlightenments: false },
    });
    const command = await qemuCommand(spec);
    expect(command.file).toBe("qemu-system-x86_64");
    expect(command.runtime).toMatchObject({ isMmio: true, cpuFeatures: [] });
    const overlay = join(dir, "root.qcow2");
    expect(command.args).toContain(
      `if=none,id=root,file=${overlay},format=qcow2,cache=unsafe,discard=unmap,werror=report`,
    );
    const before = readFileSync(overlay);
    await qemuCommand(spec);
    expect(readFileSync(overlay).equals(before)).toBe(true);
  });

  it("copies OVMF's variable store into the state folder once, and keeps it", async () => {
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(dir, "root.qcow2"), "1G"]);
    const spec = imageSpec({
      boot: { kind: "disk" },
      rootDisk: join(dir, "root.qcow2"),
      machine: { type: "q35", firmware: "uefi", hypervEnlightenments: true },
    });
    const command = await qemuCommand(spec);
    const vars = join(dir, "uefi-vars.fd");
    expect(command.args).toContain(`if=pflash,format=raw,unit=1,file=${vars}`);
    expect(readFileSync(vars).equals(readFileSync("/usr/share/OVMF/OVMF_VARS_4M.fd"))).toBe(true);
    await writeFile(vars, "changed by the guest");
    await qemuCommand(spec);
    expect(readFileSync(vars, "utf8")).toBe("changed by the guest");
    expect(existsSync(join(dir, "root.qcow2"))).toBe(true);
    // Under TCG the Hyper-V flags are left out.
    expect(command.runtime.cpuFeatures).toEqual([]);
  });
});

describe("qemuCapabilities", () => {
  it("has no screen, keyboard or resize on a microvm", () => {
    const microvm = qemuCapabilities({
      type: "microvm",
      firmware: "bios",
      hypervEnlightenments: false,
    });
    expect(microvm.has("screenshot")).toBe(false);
    expect(microvm.has("keys")).toBe(false);
    expect(microvm.has("resize")).toBe(false);
    expect(microvm.has("power-button")).toBe(true);
    expect(qemuCapabilities(undefined).has("screenshot")).toBe(true);
  });
});
