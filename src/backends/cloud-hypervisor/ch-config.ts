// A neutral VM spec as Cloud Hypervisor's `VmConfig` (the body of PUT /vm.create, validated
// against the spec by the contract tests). Paths are relative to the state folder, where Cloud
// Hypervisor runs (micro-vm-spec.ts says why).

import type { VmDrive } from "../backend.ts";
import { GUEST_CID, type MicroVmBoot, ROOT_LINK, VSOCK_SOCKET } from "../micro-vm-spec.ts";
import { CONSOLE_LOG } from "../vmm-launch.ts";
import type { ChVmConfig } from "./ch-types.ts";

const MiB = 1024 * 1024;

export interface ChConfigOptions {
  /** The most vCPUs and MiB of memory the VM may grow to (default: what it boots with). */
  maxCpus?: number | undefined;
  maxMemoryMiB?: number | undefined;
  drives?: readonly VmDrive[] | undefined;
  /** `tty`: the serial console on the VMM's stdio (owned); `file`: into console.log. */
  serial: "tty" | "file";
}

export function chConfig(boot: MicroVmBoot, options: ChConfigOptions): ChVmConfig {
  const maxCpus = Math.max(options.maxCpus ?? boot.cpus, boot.cpus);
  const hotplugMiB = Math.max(0, (options.maxMemoryMiB ?? boot.memoryMiB) - boot.memoryMiB);
  return {
    payload: { kernel: boot.kernel, initramfs: boot.initrd, cmdline: boot.kernelParams },
    cpus: { boot_vcpus: boot.cpus, max_vcpus: maxCpus },
    memory: {
      size: boot.memoryMiB * MiB,
      ...(hotplugMiB > 0 ? { hotplug_size: hotplugMiB * MiB, hotplug_method: "Acpi" } : {}),
    },
    disks: [
      // The VM's overlay backs onto the image's disk: Cloud Hypervisor opens backing files only
      // when told to.
      { id: "root", path: ROOT_LINK, image_type: "Qcow2", backing_files: true },
      ...(options.drives ?? []).map((drive, index) => ({
        id: `drive${index + 1}`,
        path: drive.path,
        readonly: drive.readOnly,
        image_type: drive.format === "qcow2" ? ("Qcow2" as const) : ("Raw" as const),
      })),
    ],
    net: boot.nics.map((nic, index) => ({ id: `net${index}`, tap: nic.ifname, mac: nic.mac })),
    rng: { src: "/dev/urandom" },
    serial: options.serial === "tty" ? { mode: "Tty" } : { mode: "File", file: CONSOLE_LOG },
    console: { mode: "Off" },
    vsock: { cid: GUEST_CID, socket: VSOCK_SOCKET },
  };
}
