// What Firecracker and Cloud Hypervisor can boot of a neutral VM spec, and the files it needs:
// a corral image's uncompressed kernel (`vmlinux`), its initrd and its root disk, with TAP NICs
// only. The VMM runs in the state folder and names every file relative to it (the root disk as
// the link `vm-root.disk`, the vsock socket `vsock.sock`), so that a snapshot taken in one state
// folder restores in another: both VMMs keep the paths of a VM's files in its saved state.

import { access, rm, symlink } from "node:fs/promises";
import { join, relative } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { TapNic, VmSpec } from "./backend.ts";

/** The root disk's name in the state folder: a link to the VM's disk. */
export const ROOT_LINK = "vm-root.disk";
/** The hybrid vsock socket, in the state folder. */
export const VSOCK_SOCKET = "vsock.sock";
/** The guest's vsock context id (2 is the host; 3 is the first guest one). */
export const GUEST_CID = 3;
/** The uncompressed kernel both VMMs boot directly (an ELF with a PVH entry point). */
export const VMLINUX = "vmlinux";

export interface MicroVmBoot {
  kernel: string;
  initrd: string;
  kernelParams: string;
  cpus: number;
  memoryMiB: number;
  /** The image's root disk: the base of the VM's own. */
  baseDisk: string;
  nics: TapNic[];
}

/** The boot files and sizes of `spec`; throws CORRAL_INVALID_ARGUMENT for what `vmm` cannot do. */
export async function microVmBoot(vmm: string, spec: VmSpec): Promise<MicroVmBoot> {
  const refuse = (what: string): never => {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `${spec.name}: ${vmm} ${what}`, {
      machine: spec.name,
    });
  };
  const { boot } = spec;
  if (boot.kind !== "image") {
    return refuse(
      `boots corral images only (a kernel and initrd), not ${boot.kind === "disk" ? "a disk through firmware" : "a start script"}`,
    );
  }
  if (!boot.direct) {
    return refuse(
      `needs image ${boot.imageId} rebuilt (\`corral image build\`): it predates direct boot`,
    );
  }
  if (spec.accelerator !== "kvm") refuse("runs under KVM only, and KVM is not usable here");
  if (spec.machine && spec.machine.firmware !== "bios") refuse("has no UEFI firmware in corral");
  if (spec.sharedDir)
    refuse("has no 9p: a shared folder needs virtio-fs, which corral does not set up yet");
  if (spec.guestAgent) refuse("has no virtio-serial port for the QEMU guest agent");
  if ((spec.drives ?? []).some((drive) => drive.media === "cdrom")) refuse("has no CD-ROM");
  const vlan = spec.nics.find((nic) => nic.kind !== "tap");
  if (vlan) {
    refuse("connects NICs to TAP devices only, not to vde VLAN switches (`corral test` VLANs)");
  }
  const kernel = join(boot.dir, VMLINUX);
  await access(kernel).catch(() =>
    refuse(
      `boots an uncompressed kernel, and image ${boot.imageId} has no ${VMLINUX} (only vmlinuz); see src/backends/firecracker/README.md`,
    ),
  );
  return {
    kernel,
    initrd: boot.direct.initrd,
    kernelParams: [boot.direct.kernelParams, ...spec.kernelParams].join(" "),
    cpus: spec.cpus ?? boot.direct.cpus,
    memoryMiB: spec.memoryMiB ?? boot.direct.memoryMiB,
    baseDisk: boot.direct.rootDisk,
    nics: spec.nics.filter((nic): nic is TapNic => nic.kind === "tap"),
  };
}

/** Points `vm-root.disk` in the state folder at `rootDisk` (relative when inside it). */
export async function linkRootDisk(stateDir: string, rootDisk: string): Promise<void> {
  const link = join(stateDir, ROOT_LINK);
  await rm(link, { force: true });
  const target = rootDisk.startsWith(`${stateDir}/`) ? relative(stateDir, rootDisk) : rootDisk;
  await symlink(target, link);
}
