// The contract every VMM backend implements, over a neutral VM spec: start a VM (or restore one,
// or attach to one that runs already), open the guest's ports through its transport, pause,
// stop or detach. Optional abilities sit behind `supports(capability)`; asking a backend for one
// it lacks throws CORRAL_UNSUPPORTED naming both.

import type { Deadline } from "../deadline.ts";
import type { MachineExitedError } from "../errors.ts";
import type { GuestTransport } from "../guest/transport.ts";
import type { Accelerator, AcceleratorProbe } from "../host/accelerator.ts";
import type { RequirementId } from "../host/requirements.ts";
import type { ExitInfo } from "../host/supervised-process.ts";
import type { ConsoleLog } from "./console-log.ts";
import type { ExitScope } from "./exit-scope.ts";

/** What a backend can do beyond start, stop and the guest's ports. */
export type Capability =
  | "pause"
  | "resize"
  | "snapshot"
  | "persistent"
  | "screenshot"
  | "keys"
  | "block-links"
  | "forward-port"
  | "monitor"
  | "reboot"
  | "power-button";

/** `owned`: the VM ends with its corral process. `persistent`: it runs on until stopped. */
export type Ownership = "owned" | "persistent";

/** A NIC on a VLAN switch (`corral test`'s networks); records made before `kind` lack it. */
export interface VlanNic {
  kind?: "vlan";
  vlan: number;
  /** The VLAN switch's socket (a vde_switch folder). */
  switchSocket: string;
  mac: string;
}

/** A NIC on a TAP device that exists already (the manager's bridged networks make them). */
export interface TapNic {
  kind: "tap";
  /** The TAP's name on the host (in the VMM's network namespace). */
  ifname: string;
  mac: string;
}

export type VmNic = VlanNic | TapNic;

/**
 * What the VM boots: a corral image (its files in the cache), a start script run as it is, or
 * a disk its firmware boots (an imported image, or an empty disk an installer writes to).
 */
export type BootSource =
  | {
      kind: "image";
      imageId: string;
      recipeHash: string;
      /** The image's files: its start script, kernel, initrd and root disk. */
      dir: string;
      startScript: string;
      kernel: string;
      /** How to boot it without its start script; undefined for images built before this. */
      direct?: ImageBootFiles | undefined;
    }
  | { kind: "start-script"; path: string }
  | {
      kind: "disk";
      /** The disk the root overlay is based on; undefined: an empty disk (`VmSpec.rootDisk`). */
      base?: DiskImage | undefined;
    };

// --- machine profiles: the virtual hardware of VMs started without a start script -----------

/** An image's files and defaults for booting its kernel directly (no start script). */
export interface ImageBootFiles {
  initrd: string;
  /** The image's root disk, the base of the VM's overlay. */
  rootDisk: string;
  kernelParams: string;
  memoryMiB: number;
  cpus: number;
}

export type DiskFormat = "qcow2" | "raw";

/** A disk image file and its format. */
export interface DiskImage {
  path: string;
  format: DiskFormat;
}

/** The chipset: `pc` (i440FX), `q35` (PCIe; UEFI needs it), `microvm` (no PCI, no firmware). */
export type MachineType = "pc" | "q35" | "microvm";
/**
 * The chipset of a machine that names none, and of corral images' start scripts. q35 rather than
 * pc: pc's ACPI tables route PCI interrupts through a `_PRT` method that loops over every slot,
 * which the guest evaluates for each device it enables (about 0.12 s each under TCG, 0.5 s of a
 * boot); q35's is a fixed table.
 */
export const DEFAULT_MACHINE_TYPE: MachineType = "q35";

export type Firmware = "bios" | "uefi";

/** The virtual hardware of a VM; a start script brings its own. */
export interface VmMachine {
  type: MachineType;
  /** `uefi`: OVMF with a per-VM variable store, Secure Boot off, no TPM. */
  firmware: Firmware;
  /** Hyper-V enlightenments for Windows guests (KVM only: left out under TCG). */
  hypervEnlightenments: boolean;
}

/** A drive besides the root disk: an ISO as a CD-ROM, or a disk image. */
export interface VmDrive extends DiskImage {
  media: "cdrom" | "disk";
  /** A CD-ROM is always read-only; a writable disk is written in place. */
  readOnly: boolean;
}

/** A VM to start, in no backend's terms. */
export interface VmSpec {
  /** Machine name: messages, the VMM's process name, file names. */
  name: string;
  /** Folder the VM may write to (sockets, disk overlay, records); it exists already. */
  stateDir: string;
  ownership: Ownership;
  boot: BootSource;
  accelerator: Accelerator;
  /** Virtual CPUs and memory, overriding the boot source's. */
  cpus?: number | undefined;
  memoryMiB?: number | undefined;
  /** Headroom for hot-adding vCPUs and memory (resize): the most the VM may grow to. */
  maxCpus?: number | undefined;
  maxMemoryMiB?: number | undefined;
  /** The root disk overlay the VM writes to; default: the boot source's own, in `stateDir`. */
  rootDisk?: string | undefined;
  /**
   * NICs on VLAN switches, then on TAP devices, in the order the guest sees them. A start script
   * brings its own VLAN NICs and is told the switches; TAP NICs are added to any command line.
   */
  nics: readonly VmNic[];
  /** A host folder shared with the guest (9p tag `shared`). */
  sharedDir?: string | undefined;
  /** Extra kernel command line parameters. */
  kernelParams: readonly string[];
  /** Keep the VM running when the guest reboots (default: a reboot ends the VM). */
  allowReboot: boolean;
  /** Extra environment for the VMM or its start script. */
  env: Readonly<Record<string, string>>;
  /** A virtio-serial port for the QEMU guest agent (`org.qemu.guest_agent.0`, GuestPort `qga`). */
  guestAgent?: boolean | undefined;
  /**
   * A disk for file copies (a backend that has none, or a machine it cannot add it to, leaves it
   * out: copies then use the `xfer` port). See RunningVm.transferDisk.
   */
  transferDisk?: boolean | undefined;
  /** What the machine layer keeps with a persistent VM (its options); backends store it as is. */
  owner?: Readonly<Record<string, unknown>>;
  // --- machine profile ---
  /** The virtual hardware; undefined: the boot source's own (a start script's, `pc`). */
  machine?: VmMachine | undefined;
  /** Drives after the root disk, in boot order after it. */
  drives?: readonly VmDrive[] | undefined;
}

/** What a persistent VM's state folder records (`vm.json`), so another process can attach. */
export interface VmRecord {
  format: 1;
  backend: string;
  name: string;
  pid: number;
  /** The VMM's start time (clock ticks since boot), so that a reused pid is not taken for it. */
  startTime: number;
  accelerator: Accelerator;
  /** The backend's own connection details (socket paths). */
  sockets: Record<string, string>;
  spec: VmSpec;
  startedAt: string;
}

/** What a running VM has, and the most it can grow to. */
export interface VmSize {
  /** vCPUs present, and the most the VM can have (`maxCpus` at start; else its vCPUs then). */
  cpus: number;
  maxCpus: number;
  /** Memory in MiB, and the most the VM can have (`maxMemoryMiB` at start; else its memory). */
  memoryMiB: number;
  maxMemoryMiB: number;
  /** Memory is added in whole multiples of this (the guest's memory block size). */
  memoryStepMiB: number;
  /** The root disk's size in bytes. */
  diskBytes: number;
}

/** What to grow a running VM to; what is left out stays as it is. */
export interface ResizeTarget {
  cpus?: number | undefined;
  memoryMiB?: number | undefined;
  /** The root disk's new size in GiB (2^30 bytes). */
  diskGiB?: number | undefined;
}

/** The host side of a port forward of the user-mode NIC. */
export interface HostForwardTarget {
  /** 0: a free port of the host's choosing. */
  hostPort: number;
  /** Default tcp. */
  protocol?: "tcp" | "udp";
  /** The host address it listens on; default 127.0.0.1, `0.0.0.0` for all of them. */
  hostAddress?: string;
}

/** A port forward of the user-mode NIC: a host port to a port of the guest. */
export interface HostForward extends HostForwardTarget {
  guestPort: number;
}

/** Saved device and memory state: the files a restore reads. */
export interface SavedState {
  /** The state stream, relative to the snapshot folder. */
  state: string;
  /** The frozen root disk layer, relative too. */
  disk: string;
  /**
   * The guest's RAM as a file a restore maps instead of reading, relative too, and its checksum
   * (host/sparse-digest.ts), taken when asked: the VM may run meanwhile, the file is a copy.
   * Absent when the RAM is in the state stream.
   */
  memory?: { file: string; digest(): Promise<string> };
  /**
   * Other files of the saved state that a restore reads (Firecracker's memory file, Cloud
   * Hypervisor's config.json and memory ranges), relative too: the snapshot's manifest keeps a
   * checksum of each, of its non-zero MiBs when `isSparse` (guest RAM).
   */
  extraFiles?: readonly { file: string; isSparse?: boolean }[];
}

/** What a restore starts from: absolute paths of a snapshot's state stream and memory file. */
export interface RestoreFiles {
  state: string;
  /** Mapped privately: the guest's writes never reach it. Absent: the RAM is in `state`. */
  memory?: string | undefined;
}

/** An event of the VMM (a QMP event for QEMU: `SHUTDOWN`, `RESET`, `STOP`, `DEVICE_DELETED`…). */
export interface VmmEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** The optional abilities, by capability. */
export interface Abilities {
  /** Writes the screen as a PNG (default) or binary PPM file at `path` (absolute). */
  screenshot: {
    screenshot(deadline: Deadline, path: string, format?: "png" | "ppm"): Promise<void>;
  };
  /** Presses the keys together; key names as the NixOS driver writes them ("ctrl", "ret", "a"). */
  keys: { sendKeys(deadline: Deadline, keys: readonly string[]): Promise<void> };
  /** Sets every NIC's link up or down; returns the NICs' names. */
  "block-links": { setLinksUp(deadline: Deadline, up: boolean): Promise<string[]> };
  /**
   * A host port (on 127.0.0.1 unless the forward names an address) reaches `guestPort` in the
   * guest; port 0 picks a free port, which it returns. unforwardPort says whether there was one.
   */
  "forward-port": {
    forwardPort(deadline: Deadline, forward: HostForward): Promise<number>;
    unforwardPort(deadline: Deadline, target: HostForwardTarget): Promise<boolean>;
  };
  /**
   * A VMM-specific monitor command line (HMP for QEMU), and the VMM's events (QMP for QEMU):
   * `onEvent` calls `listener` with each event from now on and resolves to its unsubscribe.
   */
  monitor: {
    monitorCommand(deadline: Deadline, commandLine: string): Promise<string>;
    onEvent(deadline: Deadline, listener: (event: VmmEvent) => void): Promise<() => void>;
  };
  /** Whether a guest-initiated reboot resets the VM or ends it. */
  reboot: { setRebootAllowed(deadline: Deadline, allowed: boolean): Promise<void> };
  /**
   * Pauses the VM and saves its device and memory state and its frozen root disk layer into
   * `dir` (a layer backing only onto the image, so that the snapshot outlives the VM's folder
   * and other snapshots); the VM stays paused, writing from now on to `nextOverlay`.
   */
  snapshot: {
    saveState(deadline: Deadline, dir: string, nextOverlay: string): Promise<SavedState>;
  };
  /** Presses the ACPI power button: the guest decides whether and how to shut down. */
  "power-button": { pressPowerButton(deadline: Deadline): Promise<void> };
  /** Hot-adds vCPUs and memory and grows the root disk of a running VM. */
  resize: {
    /** The VM's size and its limits, as the VMM reports them. */
    size(deadline: Deadline): Promise<VmSize>;
    /**
     * Grows the VM to `target` (checked by the caller against size()): vCPUs and memory are
     * plugged in, the root disk grows. Returns when the VMM has done it; the guest may still be
     * onlining what was added.
     */
    resize(deadline: Deadline, target: ResizeTarget): Promise<void>;
  };
}

export type OptionalCapability = keyof Abilities;

/** One running VM. */
export interface RunningVm {
  readonly backend: string;
  readonly ownership: Ownership;
  readonly console: ConsoleLog;
  /** Opens the guest's ports. */
  readonly transport: GuestTransport;
  /**
   * The host file behind the guest's transfer disk (serial `corral-xfer`), when the VM has one:
   * a sparse raw file the host writes a copy's bytes into and reads them from.
   */
  readonly transferDisk?: string | undefined;
  /** Every call pending on the VM races it: they fail at once when the VMM exits. */
  readonly scope: ExitScope;
  /** Settles when the VMM has exited; never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** How the VMM exited; undefined while it runs. */
  readonly exitInfo: ExitInfo | undefined;
  supports(capability: Capability): boolean;
  /** The object that implements `capability`; undefined when the backend lacks it. */
  ability<C extends OptionalCapability>(capability: C): Abilities[C] | undefined;
  /** The last lines the VMM itself wrote to stderr (its own error messages). */
  vmmStderr(): string[];
  /** The error for an operation that was pending when the VMM exited, with its own last words. */
  exitError(during: string, info: ExitInfo): MachineExitedError;
  /** Writes to the guest's serial console input. */
  sendConsole(text: string): void;
  /** Whether the guest's CPUs are stopped (paused, or a restored VM not yet resumed). */
  isPaused(deadline: Deadline): Promise<boolean>;
  pause(deadline: Deadline): Promise<void>;
  /** Resumes a paused VM; a restored one once its saved state has loaded. */
  resume(deadline: Deadline): Promise<void>;
  /** Ends the VM: gracefully unless `force`, then forcefully after a grace period. Idempotent. */
  stop(options?: { force?: boolean }): Promise<ExitInfo>;
  /** Lets go of the VM without ending it (persistent VMs); stops an owned one. */
  detach(): Promise<void>;
}

/** One VMM: how to start, restore and find again its VMs, and what the host needs for it. */
export interface Backend {
  readonly name: string;
  readonly capabilities: ReadonlySet<Capability>;
  /** The host programs it runs (`corral doctor` checks them; the first one runs the VMs). */
  readonly hostTools: readonly [RequirementId, ...RequirementId[]];
  /** The VMM's version; a snapshot restores only under the version that took it. */
  version(): Promise<string>;
  /**
   * It boots an image's uncompressed kernel (`vmlinux` beside its `vmlinuz`), which the machine
   * layer derives before a start or a KVM probe (Firecracker, Cloud Hypervisor).
   */
  readonly bootsVmlinux?: boolean;
  /** How this backend finds out whether KVM works here. */
  readonly acceleratorProbe: AcceleratorProbe;
  /** Creates a writable copy-on-write overlay at `path` over the disk `base`. */
  createOverlay(base: string, path: string): Promise<void>;
  // --- machine profiles ---
  /**
   * Creates a qcow2 disk at `path`: an overlay over `base` (grown to `sizeGiB` if given), or an
   * empty disk of `sizeGiB`. Throws CORRAL_INVALID_ARGUMENT when `sizeGiB` is smaller than the
   * base, CORRAL_NOT_FOUND when the base does not exist.
   */
  createDisk(path: string, options: { base?: DiskImage; sizeGiB?: number }): Promise<void>;
  /** What a VM with this hardware can do (a `microvm` has no screen, for one). */
  capabilitiesFor(machine: VmMachine | undefined): ReadonlySet<Capability>;
  start(spec: VmSpec, console: ConsoleLog): Promise<RunningVm>;
  /** Starts a VM from saved state instead of booting; it starts paused. */
  restore(spec: VmSpec, console: ConsoleLog, saved: RestoreFiles): Promise<RunningVm>;
  /** Reconnects to the persistent VM `record` describes; undefined when its VMM has gone. */
  attach(record: VmRecord, console: ConsoleLog): Promise<RunningVm | undefined>;
}
