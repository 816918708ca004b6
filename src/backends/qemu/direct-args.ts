// The QEMU command line of a VM started without a start script: its chipset, firmware, kernel
// (direct boot) or boot disk, root disk, extra drives and the devices a corral image expects.
// corral's runtime arguments (runtime-args.ts) follow, as they follow a start script's.

import { OVMF_CODE_FILE } from "../../host/requirements.ts";
import { hostTscKhz } from "../../host/tsc-frequency.ts";
import type { VmDrive, VmMachine, VmSpec } from "../backend.ts";

/** Defaults for a disk booted by its firmware (no image says otherwise). */
export const DISK_BOOT_MEMORY_MIB = 1024;
export const DISK_BOOT_CPUS = 2;

/** The MAC of the user-mode NIC, as in corral's start scripts. */
const USER_NIC_MAC = "52:54:00:12:34:56";

/**
 * Hyper-V enlightenments Windows uses under KVM (the set Proxmox and libvirt give Windows 10+).
 * TCG implements none of the Hyper-V MSRs, so they are never given there.
 */
const HYPERV_FLAGS = [
  "hv-relaxed",
  "hv-vapic",
  "hv-spinlocks=0x1fff",
  "hv-vpindex",
  "hv-runtime",
  "hv-synic",
  "hv-stimer",
  "hv-time",
  "hv-frequencies",
  "hv-reset",
  "hv-tlbflush",
  "hv-ipi",
];

export interface DirectArgsOptions {
  spec: VmSpec;
  machine: VmMachine;
  /** The root disk (a qcow2 overlay) the VM writes to. */
  rootDisk: string;
  /** The VM's UEFI variable store, with `firmware: "uefi"`. */
  uefiVars?: string | undefined;
}

/** QEMU reads a comma in an option value as the next key; ",," is a literal one. */
export function qemuValue(value: string): string {
  return value.replaceAll(",", ",,");
}

/** Whether the machine's devices sit on virtio-mmio (microvm) rather than PCI. */
export function isMmio(machine: VmMachine | undefined): boolean {
  return machine?.type === "microvm";
}

/** The `-cpu` features of `machine` under `accelerator`. */
export function cpuFeatures(machine: VmMachine | undefined, accelerator: string): string[] {
  return machine?.hypervEnlightenments && accelerator === "kvm" ? HYPERV_FLAGS : [];
}

/** Everything but corral's runtime arguments, for qemu-system-x86_64. */
export function directArgs(options: DirectArgsOptions): string[] {
  const { spec, machine, rootDisk } = options;
  const mmio = isMmio(machine);
  const device = (name: string) => `${name}-${mmio ? "device" : "pci"}`;
  const image = spec.boot.kind === "image" ? spec.boot : undefined;
  const direct = image?.direct;
  const kernelParams = [
    direct?.kernelParams,
    ...tscParams(machine, spec.accelerator),
    ...spec.kernelParams,
    spec.env.QEMU_KERNEL_PARAMS,
  ]
    .filter(Boolean)
    .join(" ");
  return [
    ...["-machine", machineOption(machine)],
    ...["-nodefaults", "-no-user-config"],
    ...["-m", String(direct?.memoryMiB ?? DISK_BOOT_MEMORY_MIB)],
    ...["-smp", String(direct?.cpus ?? DISK_BOOT_CPUS)],
    ...(options.uefiVars
      ? [
          ...["-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE_FILE}`],
          ...["-drive", `if=pflash,format=raw,unit=1,file=${qemuValue(options.uefiVars)}`],
        ]
      : []),
    // A microvm has no PCI, hence no graphics card: its only screen is the serial console.
    ...(mmio ? [] : ["-vga", "std"]),
    ...["-device", device("virtio-rng")],
    ...[
      "-drive",
      `if=none,id=root,file=${qemuValue(rootDisk)},format=qcow2,cache=unsafe,discard=unmap,werror=report`,
    ],
    ...["-device", `${device("virtio-blk")},drive=root${mmio ? "" : ",bootindex=1"}`],
    ...["-device", `${device("virtio-net")},netdev=user.0,mac=${USER_NIC_MAC}`],
    ...[
      "-netdev",
      `user,id=user.0,restrict=on${spec.env.QEMU_NET_OPTS ? `,${spec.env.QEMU_NET_OPTS}` : ""}`,
    ],
    ...(image && direct
      ? [...["-kernel", image.kernel, "-initrd", direct.initrd], ...["-append", kernelParams]]
      : []),
    ...(spec.sharedDir ? sharedDirArgs(spec.sharedDir, mmio) : []),
    ...driveArgs(spec.drives ?? [], machine),
    ...(spec.env.QEMU_OPTS ?? "").split(/\s+/).filter(Boolean),
  ];
}

/**
 * The drives besides the root disk, booted in their order after it: CD-ROMs on the IDE or SATA
 * bus of pc and q35 (what installers expect), disks on virtio. A microvm has virtio only: its
 * CD-ROMs are read-only virtio disks (cloud-init finds a `cidata` seed by label all the same).
 */
export function driveArgs(drives: readonly VmDrive[], machine: VmMachine | undefined): string[] {
  const mmio = isMmio(machine);
  return drives.flatMap((drive, index) => {
    const id = `drive${index + 1}`;
    const isCdrom = drive.media === "cdrom";
    const readOnly = isCdrom || drive.readOnly;
    const frontEnd = isCdrom && !mmio ? "ide-cd" : mmio ? "virtio-blk-device" : "virtio-blk-pci";
    return [
      ...[
        "-drive",
        `if=none,id=${id},file=${qemuValue(drive.path)},format=${drive.format}${isCdrom && !mmio ? ",media=cdrom" : ""},readonly=${readOnly ? "on" : "off"}`,
      ],
      ...["-device", `${frontEnd},drive=${id}${mmio ? "" : `,bootindex=${index + 2}`}`],
    ];
  });
}

function machineOption(machine: VmMachine): string {
  if (machine.type !== "microvm") return machine.type;
  // ACPI describes the virtio-mmio devices to the guest (the cloud kernel cannot take them from
  // its command line) and brings the power button; the legacy PIT, PIC and RTC keep a TCG guest's
  // clock calibration and wall clock as on pc.
  return "microvm,acpi=on,pit=on,pic=on,rtc=on,isa-serial=on,auto-kernel-cmdline=off";
}

/**
 * A microvm has neither HPET nor ACPI PM timer, and under TCG its PIT is too irregular for the
 * kernel to calibrate its TSC against: it then stops early in boot (after "Marking TSC
 * unstable due to could not calculate TSC khz"). TCG's TSC runs at the host's rate: say which.
 */
function tscParams(machine: VmMachine, accelerator: string): string[] {
  const khz = machine.type === "microvm" && accelerator === "tcg" ? hostTscKhz() : undefined;
  return khz ? [`tsc_early_khz=${khz}`] : [];
}

function sharedDirArgs(path: string, mmio: boolean): string[] {
  return [
    ...["-fsdev", `local,id=shared,path=${qemuValue(path)},security_model=none`],
    ...["-device", `virtio-9p-${mmio ? "device" : "pci"},fsdev=shared,mount_tag=shared`],
  ];
}
