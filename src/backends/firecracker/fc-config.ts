// A neutral VM spec in Firecracker's terms: the pre-boot configuration, as the bodies of the API
// calls that set it (each validated against the spec by the contract tests). Paths are relative
// to the state folder, where Firecracker runs (micro-vm-spec.ts says why).

import type { MicroVmBoot } from "../micro-vm-spec.ts";
import { GUEST_CID, ROOT_LINK, VSOCK_SOCKET } from "../micro-vm-spec.ts";
import type {
  FcBalloon,
  FcBootSource,
  FcDrive,
  FcMachineConfiguration,
  FcNetworkInterface,
  FcVsock,
} from "./fc-types.ts";

/** Firecracker's limit on vCPUs (`MachineConfiguration.vcpu_count`). */
export const FC_MAX_VCPUS = 32;

/**
 * The kernel parameter Firecracker's guests need: a guest reboot is a keyboard-controller reset
 * (`reboot=k`), which Firecracker handles by exiting.
 */
const FC_KERNEL_PARAMS = "reboot=k";

export interface FcConfig {
  bootSource: FcBootSource;
  machineConfig: FcMachineConfiguration;
  /** The root disk first. */
  drives: FcDrive[];
  nics: FcNetworkInterface[];
  vsock: FcVsock;
  /** A balloon that starts empty: the only way to give memory back (no hotplug in corral). */
  balloon: FcBalloon;
}

/** Extra disks after the root, as paths and read-only flags (raw images only). */
export interface FcExtraDrive {
  path: string;
  readOnly: boolean;
}

export function fcConfig(boot: MicroVmBoot, extraDrives: readonly FcExtraDrive[] = []): FcConfig {
  return {
    bootSource: {
      kernel_image_path: boot.kernel,
      initrd_path: boot.initrd,
      boot_args: `${boot.kernelParams} ${FC_KERNEL_PARAMS}`,
    },
    machineConfig: { vcpu_count: boot.cpus, mem_size_mib: boot.memoryMiB, smt: false },
    drives: [
      // Not `is_root_device`: corral's initramfs mounts the root disk itself (root=/dev/vda).
      { drive_id: "root", is_root_device: false, path_on_host: ROOT_LINK, is_read_only: false },
      ...extraDrives.map((drive, index) => ({
        drive_id: `drive${index + 1}`,
        is_root_device: false,
        path_on_host: drive.path,
        is_read_only: drive.readOnly,
      })),
    ],
    nics: boot.nics.map((nic, index) => ({
      iface_id: `eth${index}`,
      host_dev_name: nic.ifname,
      guest_mac: nic.mac,
    })),
    vsock: { guest_cid: GUEST_CID, uds_path: VSOCK_SOCKET },
    balloon: { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 },
  };
}
