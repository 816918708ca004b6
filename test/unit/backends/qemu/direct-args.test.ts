import { describe, expect, it } from "vitest";
import type { VmMachine, VmSpec } from "../../../../src/backends/backend.ts";
import {
  cpuFeatures,
  directArgs,
  driveArgs,
  qemuValue,
} from "../../../../src/backends/qemu/direct-args.ts";
import { runtimeArgs } from "../../../../src/backends/qemu/runtime-args.ts";

const MICROVM: VmMachine = { type: "microvm", firmware: "bios", hypervEnlightenments: false };
const WINDOWS: VmMachine = { type: "q35", firmware: "uefi", hypervEnlightenments: true };

function spec(overrides: Partial<VmSpec> = {}): VmSpec {
  return {
    name: "t",
    stateDir: "/state",
    ownership: "owned",
    boot: {
      kind: "image",
      imageId: "debian-12-abc",
      recipeHash: "abc",
      dir: "/img",
      startScript: "/img/run-debian-12-vm",
      kernel: "/img/vmlinuz",
      direct: {
        initrd: "/img/initrd",
        rootDisk: "/img/root.qcow2",
        kernelParams: "console=ttyS0 root=/dev/vda",
        memoryMiB: 1024,
        cpus: 2,
      },
    },
    accelerator: "kvm",
    nics: [],
    kernelParams: ["extra=1"],
    allowReboot: false,
    env: {},
    ...overrides,
  };
}

/** The value after each occurrence of `flag`. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((arg, index) => (arg === flag ? [args[index + 1] ?? ""] : []));
}

describe("directArgs", () => {
  it("boots an image's kernel on a microvm, every device on virtio-mmio, no screen", () => {
    const args = directArgs({ spec: spec(), machine: MICROVM, rootDisk: "/state/root.qcow2" });
    expect(values(args, "-machine")).toEqual([
      "microvm,acpi=on,pit=on,pic=on,rtc=on,isa-serial=on,auto-kernel-cmdline=off",
    ]);
    expect(values(args, "-device")).toEqual([
      "virtio-rng-device",
      "virtio-blk-device,drive=root",
      "virtio-net-device,netdev=user.0,mac=52:54:00:12:34:56",
    ]);
    expect(args).not.toContain("-vga");
    expect(values(args, "-kernel")).toEqual(["/img/vmlinuz"]);
    expect(values(args, "-initrd")).toEqual(["/img/initrd"]);
    expect(values(args, "-append")).toEqual(["console=ttyS0 root=/dev/vda extra=1"]);
  });

  it("tells a microvm under TCG its TSC rate, which it cannot calibrate there", () => {
    const args = directArgs({
      spec: spec({ accelerator: "tcg" }),
      machine: MICROVM,
      rootDisk: "/state/root.qcow2",
    });
    expect(values(args, "-append")[0]).toMatch(
      /^console=ttyS0 root=\/dev\/vda tsc_early_khz=\d+ extra=1$/,
    );
  });

  it("gives a q35 UEFI machine OVMF's code read-only and its own variable store, and a screen", () => {
    const args = directArgs({
      spec: spec({ boot: { kind: "disk" } }),
      machine: WINDOWS,
      rootDisk: "/state/root.qcow2",
      uefiVars: "/state/uefi-vars.fd",
    });
    expect(values(args, "-machine")).toEqual(["q35"]);
    expect(values(args, "-drive").slice(0, 2)).toEqual([
      "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
      "if=pflash,format=raw,unit=1,file=/state/uefi-vars.fd",
    ]);
    expect(values(args, "-vga")).toEqual(["std"]);
    expect(values(args, "-device")).toContain("virtio-blk-pci,drive=root,bootindex=1");
    expect(args).not.toContain("-kernel");
    expect(values(args, "-m")).toEqual(["1024"]);
  });

  it("honours QEMU_OPTS, QEMU_NET_OPTS and QEMU_KERNEL_PARAMS as a start script does", () => {
    const args = directArgs({
      spec: spec({
        env: {
          QEMU_OPTS: " -S  -d int",
          QEMU_NET_OPTS: "hostfwd=tcp::2222-:22",
          QEMU_KERNEL_PARAMS: "k=v",
        },
      }),
      machine: MICROVM,
      rootDisk: "/r,oot.qcow2",
    });
    expect(args.slice(-3)).toEqual(["-S", "-d", "int"]);
    expect(values(args, "-netdev")).toEqual(["user,id=user.0,restrict=on,hostfwd=tcp::2222-:22"]);
    expect(values(args, "-append")[0]).toMatch(/ k=v$/);
    expect(values(args, "-drive")[0]).toContain("file=/r,,oot.qcow2,format=qcow2");
  });
});

describe("driveArgs", () => {
  const drives = [
    { path: "/iso/install.iso", format: "raw", media: "cdrom", readOnly: true },
    { path: "/d/data.qcow2", format: "qcow2", media: "disk", readOnly: false },
  ] as const;

  it("puts CD-ROMs on IDE or SATA and disks on virtio, booted after the root disk", () => {
    expect(driveArgs(drives, WINDOWS)).toEqual([
      "-drive",
      "if=none,id=drive1,file=/iso/install.iso,format=raw,media=cdrom,readonly=on",
      "-device",
      "ide-cd,drive=drive1,bootindex=2",
      "-drive",
      "if=none,id=drive2,file=/d/data.qcow2,format=qcow2,readonly=off",
      "-device",
      "virtio-blk-pci,drive=drive2,bootindex=3",
    ]);
  });

  it("makes every drive a virtio-mmio disk on a microvm, CD-ROMs read-only", () => {
    expect(driveArgs(drives, MICROVM)).toEqual([
      "-drive",
      "if=none,id=drive1,file=/iso/install.iso,format=raw,readonly=on",
      "-device",
      "virtio-blk-device,drive=drive1",
      "-drive",
      "if=none,id=drive2,file=/d/data.qcow2,format=qcow2,readonly=off",
      "-device",
      "virtio-blk-device,drive=drive2",
    ]);
  });
});

describe("cpuFeatures and runtimeArgs", () => {
  it("gives Hyper-V enlightenments under KVM only", () => {
    expect(cpuFeatures(WINDOWS, "kvm")).toContain("hv-relaxed");
    expect(cpuFeatures(WINDOWS, "tcg")).toEqual([]);
    expect(cpuFeatures(MICROVM, "kvm")).toEqual([]);
    const args = runtimeArgs({
      name: "w",
      ownership: "owned",
      accelerator: "kvm",
      sockets: {},
      allowReboot: false,
      cpuFeatures: cpuFeatures(WINDOWS, "kvm"),
    });
    expect(values(args, "-cpu")[0]).toMatch(/^host,hv-relaxed,hv-vapic,hv-spinlocks=0x1fff,/);
  });

  it("puts corral's serial ports and VLAN NICs on virtio-mmio for a microvm", () => {
    const args = runtimeArgs({
      name: "m",
      ownership: "owned",
      accelerator: "tcg",
      sockets: {},
      allowReboot: false,
      isMmio: true,
      nics: [{ vlan: 1, switchSocket: "/vde1", mac: "52:54:00:12:01:01" }],
    });
    expect(values(args, "-device")).toContain("virtio-serial-device,id=corral-serial");
    expect(values(args, "-device")).toContain(
      "virtio-net-device,netdev=vlan1,mac=52:54:00:12:01:01",
    );
    expect(values(args, "-cpu")).toEqual(["max"]);
  });

  it("adds the guest agent's port only when it has a socket: dialled again when owned", () => {
    const base = {
      name: "g",
      accelerator: "tcg",
      allowReboot: false,
    } as const;
    const without = runtimeArgs({ ...base, ownership: "owned", sockets: {} });
    expect(values(without, "-device").join(" ")).not.toContain("org.qemu.guest_agent.0");
    const owned = runtimeArgs({ ...base, ownership: "owned", sockets: { qga: "/s/qga.sock" } });
    expect(values(owned, "-chardev")).toContain(
      "socket,id=corral-qga,path=/s/qga.sock,reconnect=1",
    );
    expect(values(owned, "-device")).toContain(
      "virtserialport,chardev=corral-qga,bus=corral-serial.0,name=org.qemu.guest_agent.0",
    );
    const persistent = runtimeArgs({
      ...base,
      ownership: "persistent",
      sockets: { qga: "/s/qga.sock" },
    });
    expect(values(persistent, "-chardev")).toContain(
      "socket,id=corral-qga,path=/s/qga.sock,server=on,wait=off",
    );
  });

  it("escapes commas in option values", () => {
    expect(qemuValue("/a,b")).toBe("/a,,b");
  });
});
