// What the Firecracker and Cloud Hypervisor backends send for a VM spec, checked against the
// official specs: every configuration body fcConfig and chConfig produce, for small and large
// VMs with TAP NICs and extra drives; and the specs microVmBoot refuses, with their reasons.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VmSpec } from "../../../src/backends/backend.ts";
import { chConfig } from "../../../src/backends/cloud-hypervisor/ch-config.ts";
import { fcConfig } from "../../../src/backends/firecracker/fc-config.ts";
import { type MicroVmBoot, microVmBoot } from "../../../src/backends/micro-vm-spec.ts";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { loadSpec } from "../../helpers/vmm-spec.ts";

let imageDir: string;

beforeAll(() => {
  imageDir = mkdtempSync(join(tmpdir(), "corral-microvm-"));
  writeFileSync(join(imageDir, "vmlinux"), "not really a kernel");
});

afterAll(() => rmSync(imageDir, { recursive: true, force: true }));

const spec = (overrides: Partial<VmSpec> = {}): VmSpec => ({
  name: "web",
  stateDir: "/tmp/web",
  ownership: "owned",
  boot: {
    kind: "image",
    imageId: "debian-12-x",
    recipeHash: "x",
    dir: imageDir,
    startScript: join(imageDir, "run-debian-12-vm"),
    kernel: join(imageDir, "vmlinuz"),
    direct: {
      initrd: join(imageDir, "initrd"),
      rootDisk: join(imageDir, "root.qcow2"),
      kernelParams: "console=ttyS0 root=/dev/vda rw",
      memoryMiB: 1024,
      cpus: 2,
    },
  },
  accelerator: "kvm",
  nics: [
    { kind: "tap", ifname: "corral-tap0", mac: "52:54:00:12:01:01" },
    { kind: "tap", ifname: "corral-tap1", mac: "52:54:00:12:02:01" },
  ],
  kernelParams: ["quiet"],
  allowReboot: false,
  env: {},
  drives: [{ path: "/data.raw", format: "raw", media: "disk", readOnly: true }],
  ...overrides,
});

async function boots(overrides: Partial<VmSpec> = {}): Promise<MicroVmBoot> {
  return microVmBoot("Firecracker", spec(overrides));
}

describe("Firecracker configuration from a VM spec", () => {
  const check = loadSpec("firecracker");
  for (const [what, overrides] of [
    ["the image's defaults", {}],
    ["a big VM", { cpus: 32, memoryMiB: 65536 }],
    ["no NICs", { nics: [] }],
  ] as const) {
    it(`every body the spec accepts (${what})`, async () => {
      const config = fcConfig(await boots(overrides), [{ path: "/data.raw", readOnly: true }]);
      const requests: [string, string, unknown][] = [
        ["PUT", "/boot-source", config.bootSource],
        ["PUT", "/machine-config", config.machineConfig],
        ...config.drives.map(
          (d) => ["PUT", `/drives/${d.drive_id}`, d] as [string, string, unknown],
        ),
        ...config.nics.map(
          (n) => ["PUT", `/network-interfaces/${n.iface_id}`, n] as [string, string, unknown],
        ),
        ["PUT", "/vsock", config.vsock],
        ["PUT", "/balloon", config.balloon],
      ];
      for (const [method, path, body] of requests) {
        expect(check.requestProblem(method, path, body), `${method} ${path}`).toBe(undefined);
      }
      expect(config.bootSource.boot_args).toBe("console=ttyS0 root=/dev/vda rw quiet reboot=k");
      expect(config.drives[0]).toMatchObject({ drive_id: "root", path_on_host: "vm-root.disk" });
    });
  }

  it("more vCPUs than Firecracker's 32 are a body the spec rejects", async () => {
    const config = fcConfig(await boots({ cpus: 64 }));
    expect(check.requestProblem("PUT", "/machine-config", config.machineConfig)).toMatch(
      /vcpu_count/,
    );
  });
});

describe("Cloud Hypervisor configuration from a VM spec", () => {
  const check = loadSpec("cloud-hypervisor");
  for (const [what, overrides, serial] of [
    ["owned, the image's defaults", {}, "tty"],
    ["persistent, with headroom to grow", { maxCpus: 8, maxMemoryMiB: 8192 }, "file"],
    ["no NICs, no drives", { nics: [], drives: [] }, "tty"],
  ] as const) {
    it(`vm.create's body is one the spec accepts (${what})`, async () => {
      const s = spec(overrides);
      const config = chConfig(await microVmBoot("Cloud Hypervisor", s), {
        maxCpus: s.maxCpus,
        maxMemoryMiB: s.maxMemoryMiB,
        drives: s.drives,
        serial,
      });
      expect(check.requestProblem("PUT", "/vm.create", config)).toBe(undefined);
      expect(config.disks?.[0]).toMatchObject({ path: "vm-root.disk", backing_files: true });
    });
  }

  it("headroom becomes max_vcpus and hotplug_size in bytes", async () => {
    const config = chConfig(await microVmBoot("Cloud Hypervisor", spec()), {
      maxCpus: 4,
      maxMemoryMiB: 2048,
      serial: "tty",
    });
    expect(config.cpus).toEqual({ boot_vcpus: 2, max_vcpus: 4 });
    expect(config.memory).toEqual({
      size: 1024 * 2 ** 20,
      hotplug_size: 1024 * 2 ** 20,
      hotplug_method: "Acpi",
    });
  });
});

describe("what the micro-VM backends refuse", () => {
  const refused = async (overrides: Partial<VmSpec>): Promise<string> => {
    const error = await boots(overrides).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(CorralError);
    expect((error as CorralError).code).toBe(ErrorCodes.INVALID_ARGUMENT);
    return (error as CorralError).message;
  };

  it("a VLAN NIC (vde switch)", async () => {
    const vlan = { vlan: 1, switchSocket: "/tmp/vde1", mac: "52:54:00:12:01:01" };
    expect(await refused({ nics: [vlan] })).toMatch(/TAP devices only/);
  });

  it("a start script, and TCG", async () => {
    expect(await refused({ boot: { kind: "start-script", path: "/run-vm" } })).toMatch(
      /not a start script/,
    );
    expect(await refused({ accelerator: "tcg" })).toMatch(/KVM only/);
  });

  it("an image without an uncompressed kernel", async () => {
    const s = spec();
    if (s.boot.kind !== "image") throw new Error("unreachable");
    expect(await refused({ boot: { ...s.boot, dir: "/nonexistent" } })).toMatch(/has no vmlinux/);
  });

  it("a shared folder, the guest agent and a CD-ROM", async () => {
    expect(await refused({ sharedDir: "/tmp" })).toMatch(/virtio-fs/);
    expect(await refused({ guestAgent: true })).toMatch(/guest agent/);
    const cdrom = {
      path: "/x.iso",
      format: "raw" as const,
      media: "cdrom" as const,
      readOnly: true,
    };
    expect(await refused({ drives: [cdrom] })).toMatch(/CD-ROM/);
  });
});
