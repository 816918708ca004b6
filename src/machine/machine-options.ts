// The options and result types of Machine's public API.

import type {
  DiskFormat,
  Firmware,
  MachineType,
  Ownership,
  ResizeTarget,
  VmSize,
} from "../backends/backend.ts";
import type { WaitOptions } from "../deadline.ts";
import type { Accelerator } from "../host/accelerator.ts";

/** A NIC on a virtual LAN: the VLAN's number and the switch's socket (a vde_switch folder). */
export interface VlanAttachment {
  vlan: number;
  switchSocket: string;
}

/**
 * A NIC on a TAP device that exists already (made with `ip tuntap add … mode tap`, single-queue,
 * in the network namespace corral runs in): its name and the NIC's MAC.
 */
export interface TapAttachment {
  ifname: string;
  mac: string;
}

export interface MachineOptions {
  /**
   * Name used in messages and logs: a host name (letters, digits and "-", starting with a letter,
   * at most 63 characters). Defaults to the start script's `run-<name>-vm` or the image.
   */
  name?: string;
  /**
   * Image to boot: a recipe name or a cache entry id. Default: `debian-12`, unless a `bootDisk`
   * is given. `null`: no corral image; the firmware boots `bootDisk`, or an empty disk of
   * `diskGiB` (for an installer on one of the `drives`).
   */
  image?: string | null;
  /** A `run-<name>-vm` start script to run instead of an image (Nix-built or corral-built). */
  startScript?: string;
  /** Force `kvm` or `tcg`; by default KVM is used where it was found to work. */
  accel?: Accelerator;
  /** Folder for the VM's state (sockets, disk overlay); emptied at start unless `keepState`. */
  stateDir?: string;
  /** Keep the state folder: at start (reuse the disk overlay) and when disposed. */
  keepState?: boolean;
  /**
   * The root disk overlay to boot from and write to (a qcow2 over the image's disk), instead of
   * the image's default one in `stateDir`: a clone's own disk, or the overlay a snapshot moved the
   * VM to (`Machine.rootDisk`), when a later process starts the VM again.
   */
  rootDisk?: string;
  /** Keep the VM running across a guest-initiated reboot. */
  allowReboot?: boolean;
  /**
   * Give the guest the QEMU guest agent's port (`org.qemu.guest_agent.0`), so that a qemu-ga in
   * it answers `Machine.guestAgent()`. Default false: corral's image starts qemu-ga when the port
   * appears, which a test VM does not need.
   */
  guestAgent?: boolean;
  /**
   * Give the guest a transfer disk (a virtio disk with serial `corral-xfer`, after every other
   * disk, backed by a sparse file in the state folder) that `copyFromHost` and `copyFromVm` move
   * bytes through, several times faster than the `corral.xfer` port. Default: true for a corral
   * image or a disk boot on pc or q35 with the QEMU backend, false for a start script and a
   * microvm; a machine restored from a snapshot has it when the snapshot's machine had it.
   */
  transferDisk?: boolean;
  /**
   * A host folder shared with the guest over 9p (`SHARED_DIR` for the start script; mounted at
   * /tmp/shared by NixOS test VMs and by corral images whose kernel has 9p, such as
   * debian-12-full). When the guest has it mounted, file copies go through it.
   */
  sharedDir?: string;
  /** Virtual CPUs, 1–255 (default: the image's, 2 for corral-built images). */
  cpus?: number;
  /** Memory in MiB, at least 64 (default: the image's, 1024 for corral-built images). */
  memoryMiB?: number;
  /**
   * Headroom for `resize`: the most vCPUs (up to 255) and memory in MiB (up to 512 GiB) the
   * running machine may grow to; at least `cpus` and `memoryMiB`. Without them it cannot grow.
   */
  maxCpus?: number;
  maxMemoryMiB?: number;
  /**
   * Virtual LANs to join. A machine started from an image gets one NIC per VLAN with MAC
   * 52:54:00:12:<vlan>:<node> (corral-built guests take 192.168.<vlan>.<node> on it). A start
   * script brings its own NICs, as Nix-built ones do: it gets `QEMU_VDE_SOCKET_<vlan>`.
   */
  vlans?: VlanAttachment[];
  /**
   * NICs on TAP devices (after the VLAN NICs): the manager's bridged networks, or any TAP the
   * caller made. QEMU opens each by name with no ifup script; the guest sees them in this order.
   */
  taps?: TapAttachment[];
  /** This machine's number on its VLANs (1–254), the last byte of its MACs and addresses. */
  node?: number;
  /**
   * Start from this snapshot folder (see `Machine.snapshot`) instead of booting, with a writable
   * overlay of its own. `Machine.fromSnapshot` fills in the snapshot's machine config.
   */
  snapshot?: string;
  /** The backend that runs the VM (default `qemu`). */
  backend?: string;
  /**
   * `owned` (default): the VM ends with this process, even if it is killed. `persistent`: the VM
   * runs on its own until stopped; it needs a `stateDir`, where `Machine.attach` finds it again.
   * Disposing a persistent machine detaches from it; `stop()` ends it.
   */
  ownership?: Ownership;
  /** Extra kernel command line parameters (for corral images and NixOS start scripts). */
  kernelParams?: string[];
  /**
   * Extra environment for the start script or VMM: `QEMU_OPTS` (extra QEMU arguments),
   * `QEMU_KERNEL_PARAMS`, `QEMU_NET_OPTS` (options of the user-mode network).
   */
  env?: Record<string, string>;

  // --- machine profile: chipset, firmware, disks (README "Machine profiles") ---
  /**
   * The chipset. `q35` (PCIe; needed for UEFI; the default, and what corral images' start scripts
   * run: it boots ~0.5 s sooner than pc under TCG), `pc` (i440FX; the default for a BIOS machine
   * with CD-ROMs, which Debian's cloud kernel cannot read on q35's AHCI), `microvm` (no PCI, no
   * firmware, no screen or keyboard: the image's kernel boots directly on virtio-mmio devices,
   * the fastest profile). Not with a start script, which brings its own.
   */
  machineType?: MachineType;
  /**
   * `bios` (SeaBIOS, the default) or `uefi`: OVMF from Debian's `ovmf` package, q35 only, Secure
   * Boot off, no TPM. The VM's UEFI variable store is a copy in its state folder, made at its
   * first start and kept with the folder.
   */
  firmware?: Firmware;
  /**
   * Boot from this disk image (an imported image, not a corral one): the VM writes to a qcow2
   * overlay in its state folder, never to `path`. Without an `image` the firmware boots it (it
   * needs its own boot loader); with an `image` (and always on `microvm`), the image's kernel
   * and initrd boot with this disk as their root (`kernelParams` can say `root=`).
   */
  bootDisk?: BootDiskOptions;
  /**
   * The root disk's size in GiB, when its overlay is made: an image's or `bootDisk`'s root disk
   * grown to it (corral images grow their filesystem at boot), or, with `image: null` and no
   * `bootDisk`, an empty disk of this size. At least the base disk's size.
   */
  diskGiB?: number;
  /**
   * Drives besides the root disk, booted in this order after it: install or driver ISOs as
   * CD-ROMs (IDE on pc, SATA on q35), a cloud-init NoCloud seed (an ISO labelled `cidata`),
   * data disks (virtio). On `microvm` every drive is a virtio disk, CD-ROMs read-only.
   */
  drives?: DriveOptions[];
  /**
   * Hyper-V enlightenments for Windows guests (relaxed timing, vAPIC, spinlocks, synthetic
   * timers, …). Only with KVM: under TCG they are left out, since TCG implements none of them.
   * Not on `microvm`.
   */
  hypervEnlightenments?: boolean;
}

/** A disk image to boot from: its path and format (see `qemu-img info`). */
export interface BootDiskOptions {
  path: string;
  format: DiskFormat;
}

/** A drive besides the root disk. */
export interface DriveOptions {
  /** The image file: an ISO for a CD-ROM. */
  path: string;
  media: "cdrom" | "disk";
  /** A CD-ROM is always read-only; a disk is written in place unless this is true. */
  readOnly?: boolean;
  /** `raw` (the default, and the only format of a CD-ROM) or `qcow2`. */
  format?: DiskFormat;
}

export interface ExecuteOptions extends WaitOptions {
  /** Called with stdout bytes as they arrive (all of them, `maxBuffer` or not). */
  onStdout?: (chunk: Buffer) => void;
  /** Called with stderr bytes as they arrive (all of them, `maxBuffer` or not). */
  onStderr?: (chunk: Buffer) => void;
  /**
   * Bytes of each of stdout and stderr kept for the result; default 64 MiB. A command that
   * writes more runs to its end, then the call fails with CORRAL_OUTPUT_TOO_LARGE.
   */
  maxBuffer?: number;
  /**
   * Keep the first `maxBuffer` bytes of a stream that writes more and return normally, saying so
   * in `isStdoutTruncated` / `isStderrTruncated`, instead of throwing CORRAL_OUTPUT_TOO_LARGE.
   */
  truncate?: boolean;
  /**
   * false: send the command and return at once with exit code -1 and no output, as NixOS's
   * `check_return=False` for commands that end or replace the shell (`exec …`, kexec). The next
   * command waits until it has ended, or for the new shell the guest starts, as after a reboot.
   * NixOS still reads the output then; corral does not.
   */
  checkReturn?: boolean;
  /** false: the same, with exit code -2, as NixOS's `check_output=False`. */
  checkOutput?: boolean;
}

/** What a guest command did. Output is text unless `encoding: "buffer"` was asked for. */
export interface ExecResult<Output extends string | Buffer = string> {
  exitCode: number;
  stdout: Output;
  stderr: Output;
  /** With `truncate`: the stream wrote more than `maxBuffer` bytes, of which only the first are here. */
  isStdoutTruncated?: boolean;
  isStderrTruncated?: boolean;
}

export interface UserOptions extends WaitOptions {
  /** Act on this user's systemd instance (`systemctl --user`) instead of the system's. */
  user?: string;
}

/** Where a forward of the user-mode NIC listens on the host (Machine.forwardPort). */
export interface ForwardPortOptions {
  /** Default tcp. */
  protocol?: "tcp" | "udp";
  /** An address of the host; default 127.0.0.1, `0.0.0.0` for every address. */
  hostAddress?: string;
}

export interface PortOptions extends WaitOptions {
  /** Address to check in the guest; default `localhost`. */
  address?: string;
}

export interface PowerDownOptions extends WaitOptions {
  /** Milliseconds the guest gets to power off before the VM is forced off; default 60 000. */
  graceMs?: number;
}

export interface SnapshotOptions extends WaitOptions {
  /** Stop the VM once the snapshot is written, instead of resuming it. */
  stop?: boolean;
}

/**
 * What `resize` grows a running machine to: vCPUs, memory in MiB (grown in whole multiples of
 * `MachineSize.memoryStepMiB`, 128), the root disk in GiB. What is left out stays as it is.
 */
export type ResizeOptions = ResizeTarget;

/** What a running machine has and the most it can grow to, as its VMM reports them. */
export type MachineSize = VmSize;
