// The contract every VMM backend implements: start a VM, expose its console and guest-shell
// transports, stop it. Optional abilities are declared in `capabilities`; Machine checks them
// before calling the matching method.

import type { Socket } from "node:net";
import type { Deadline } from "../deadline.ts";
import type { MachineExitedError } from "../errors.ts";
import type { ShellStreams } from "../guest/backdoor-shell.ts";
import type { Accelerator } from "../host/accelerator.ts";
import type { ExitInfo } from "../host/supervised-process.ts";
import type { ConsoleLog } from "./console-log.ts";

/** Optional abilities; calling one a backend lacks throws CORRAL_UNSUPPORTED naming both. */
export type Capability =
  | "screenshot"
  | "keys"
  | "block-links"
  | "forward-port"
  | "monitor"
  | "reboot"
  | "snapshot";

export interface VlanNic {
  vlan: number;
  /** The VLAN switch's socket (a vde_switch folder). */
  switchSocket: string;
  mac: string;
}

export interface VmStartOptions {
  /** Machine name, used in messages and file names, and the VMM's name for the guest. */
  name: string;
  /** Folder the VM may write to (sockets, disk overlay); it exists already. */
  stateDir: string;
  accelerator: Accelerator;
  /** Keep the VM running when the guest reboots (default: a reboot ends the VM). */
  allowReboot?: boolean;
  /** Virtual CPUs and memory, overriding the start script's. */
  cpus?: number;
  memoryMiB?: number;
  /** NICs to add, each on a VLAN switch. */
  nics?: VlanNic[];
  /** The console log to append to, so that it runs on across restarts of the VM. */
  console?: ConsoleLog;
  /** Start from this saved state (a `saveState` stream) instead of booting. */
  restoreState?: string;
  /** Extra environment for the VMM or its start script. */
  env?: Record<string, string>;
}

/** One running VM. Methods named after a capability may only be called when it is declared. */
export interface RunningVm extends AsyncDisposable {
  readonly backend: string;
  readonly capabilities: ReadonlySet<Capability>;
  readonly console: ConsoleLog;
  /** Settles when the VMM process has exited; never rejects. */
  readonly exited: Promise<ExitInfo>;
  readonly hasExited: boolean;
  /** How the VMM exited; undefined while it runs. */
  readonly exitInfo: ExitInfo | undefined;
  /** The last lines the VMM itself wrote to stderr (its own error messages). */
  vmmStderr(): string[];
  /** The error for an operation that was pending when the VMM exited, with its own last words. */
  exitError(during: string, info: ExitInfo): MachineExitedError;
  /** The guest's backdoor shell streams, once the VMM connects them. */
  shellStreams(deadline: Deadline): Promise<ShellStreams>;
  /** The stream behind the guest's `corral.xfer` port. */
  transferStream(deadline: Deadline): Promise<Socket>;
  /** Writes to the guest's serial console input. */
  sendConsole(text: string): void;
  /** "monitor": a VMM-specific monitor command line (HMP for QEMU); returns its output. */
  monitorCommand(deadline: Deadline, commandLine: string): Promise<string>;
  /** "screenshot": writes the screen as a PNG file at `path` (absolute). */
  screenshot(deadline: Deadline, path: string): Promise<void>;
  /** "keys": presses the keys together (QEMU qcodes: "ctrl", "alt", "delete", "a"…). */
  sendKeys(deadline: Deadline, qcodes: readonly string[]): Promise<void>;
  /** "block-links": sets every NIC's link up or down; returns the NICs' names. */
  setLinksUp(deadline: Deadline, up: boolean): Promise<string[]>;
  /**
   * "forward-port": 127.0.0.1:hostPort on the host reaches guestPort in the guest; hostPort 0
   * takes a free port. Returns the host port. CORRAL_CONFLICT when hostPort is in use.
   */
  forwardPort(deadline: Deadline, hostPort: number, guestPort: number): Promise<number>;
  /** "reboot": whether a guest-initiated reboot resets the VM or ends it. */
  setRebootAllowed(deadline: Deadline, allowed: boolean): Promise<void>;
  /**
   * "snapshot": pauses the VM and saves its device and memory state and its frozen root disk
   * layer into `dir`; the VM stays paused, writing from now on to `nextOverlay`. Returns the
   * files' names in `dir`.
   */
  saveState(
    deadline: Deadline,
    dir: string,
    nextOverlay: string,
  ): Promise<{ state: string; disk: string }>;
  /** Resumes a paused VM; a restored one once its saved state has loaded. */
  resume(deadline: Deadline): Promise<void>;
  /** Ends the VM: gracefully unless `force`, then forcefully after a grace period. Idempotent. */
  stop(options?: { force?: boolean }): Promise<ExitInfo>;
}
