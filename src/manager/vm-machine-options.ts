// A managed VM as Machine options: a persistent machine whose state folder is the VM's own, kept
// across starts. The spec fields Machine has no option for yet are refused here, by name, rather
// than dropped: this is the one place that maps the spec onto Machine.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { MachineOptions } from "../machine/machine.ts";
import type { ManagedSpec } from "./vm-spec.ts";

export interface MachineTarget {
  name: string;
  stateDir: string;
  spec: ManagedSpec;
}

/**
 * The options of the Machine that runs `vm`. Throws CORRAL_UNSUPPORTED naming each spec field
 * this build of corral cannot start a VM with (machine types other than pc, UEFI, imported disks
 * and ISOs, extra drives, Hyper-V enlightenments, cloud-init seeds).
 */
export function machineOptionsFor(vm: MachineTarget): MachineOptions {
  const { spec } = vm;
  const missing = [
    spec.machineType !== "pc" && `machine type ${spec.machineType}`,
    spec.firmware !== "bios" && `firmware ${spec.firmware}`,
    spec.bootDisk && "booting an imported disk image",
    spec.drives.length > 0 && "extra drives (ISOs, data disks)",
    spec.cacheImage === null && !spec.bootDisk && "an empty disk without an image",
    spec.hypervEnlightenments && "Hyper-V enlightenments",
    spec.cloudInit && "cloud-init data",
  ].filter((item): item is string => typeof item === "string");
  if (missing.length > 0) {
    throw new CorralError(
      ErrorCodes.UNSUPPORTED,
      `VM "${vm.name}": this corral cannot start VMs with ${missing.join(", ")} yet`,
    );
  }
  return {
    name: vm.name,
    ownership: "persistent",
    // Every managed VM gets qemu-ga's port: the guest channel when it has no backdoor shell.
    guestAgent: true,
    stateDir: vm.stateDir,
    keepState: true,
    backend: spec.backend,
    ...(spec.cacheImage ? { image: spec.cacheImage } : {}),
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    ...(spec.kernelParams.length > 0 ? { kernelParams: spec.kernelParams } : {}),
    ...(spec.rootDisk ? { rootDisk: spec.rootDisk } : {}),
  };
}
