// The QEMU backend: VMs started from `run-<name>-vm` start scripts (corral's images have one, as
// Nix-built VMs do) or, for the machine profiles a start script cannot give (microvm, q35, UEFI,
// a disk booted by its firmware), from corral's own arguments; driven over QMP, with the guest's
// ports on virtio-serial unix sockets.

import { runProgram } from "../../host/run-program.ts";
import type { Backend } from "../backend.ts";
import { qemuAcceleratorProbe } from "./kvm-probe.ts";
import { overlayFromTemplate } from "./overlay-template.ts";
import { qemuCapabilities } from "./qemu-command.ts";
import { createQemuDisk } from "./qemu-disks.ts";
import { attachQemu, launchQemu } from "./qemu-launch.ts";
import { qemuVersion } from "./qemu-version.ts";
import { QEMU_CAPABILITIES } from "./qemu-vm.ts";

export const qemuBackend: Backend = {
  name: "qemu",
  capabilities: QEMU_CAPABILITIES,
  hostTools: ["qemu-system-x86_64", "qemu-img"],
  version: qemuVersion,
  acceleratorProbe: qemuAcceleratorProbe,
  async createOverlay(base, path) {
    if (await overlayFromTemplate(base, path)) return;
    await runProgram("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, path]);
  },
  createDisk: (path, options) => createQemuDisk(path, options),
  capabilitiesFor: (machine) => qemuCapabilities(machine),
  start: (spec, console) => launchQemu(spec, console),
  restore: (spec, console, saved) => launchQemu(spec, console, saved),
  attach: (record, console) => attachQemu(record, console),
};
