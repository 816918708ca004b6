// The Cloud Hypervisor backend: VMs booted from a corral image's uncompressed kernel, initrd and
// a qcow2 overlay on its root disk, created and driven over Cloud Hypervisor's API socket, with
// the guest's ports on hybrid vsock. Built against the official API spec; not yet run on a real
// Cloud Hypervisor.

import type { AcceleratorProbe } from "../../host/accelerator.ts";
import { runProgram } from "../../host/run-program.ts";
import type { Backend } from "../backend.ts";
import { PROBE_CMDLINE, probeByBooting, probeWithVmlinux, vmmVersion } from "../micro-vm-probe.ts";
import { createQemuDisk } from "../qemu/qemu-disks.ts";
import {
  attachCloudHypervisor,
  CH_CAPABILITIES,
  cloudHypervisorBinary,
  launchCloudHypervisor,
} from "./ch-launch.ts";

const chAcceleratorProbe: AcceleratorProbe = {
  vmmVersion: () => vmmVersion(cloudHypervisorBinary()),
  probeKvm: (kernel) =>
    probeWithVmlinux(kernel, (vmlinux) =>
      probeByBooting("Cloud Hypervisor", cloudHypervisorBinary(), [
        ...["--kernel", vmlinux, "--cmdline", PROBE_CMDLINE],
        ...["--cpus", "boot=1", "--memory", "size=128M", "--serial", "tty", "--console", "off"],
      ]),
    ),
};

export const cloudHypervisorBackend: Backend = {
  name: "cloud-hypervisor",
  capabilities: CH_CAPABILITIES,
  bootsVmlinux: true,
  hostTools: ["cloud-hypervisor", "qemu-img"],
  version: () => vmmVersion(cloudHypervisorBinary()),
  acceleratorProbe: chAcceleratorProbe,
  async createOverlay(base, path) {
    await runProgram("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, path]);
  },
  createDisk: (path, options) => createQemuDisk(path, options),
  capabilitiesFor: () => CH_CAPABILITIES,
  start: (spec, console) => launchCloudHypervisor(spec, console),
  restore: (spec, console, saved) => launchCloudHypervisor(spec, console, saved.state),
  attach: (record, console) => attachCloudHypervisor(record, console),
};
