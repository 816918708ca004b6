// The contract every VMM backend implements: start a VM, expose its console and guest-shell
// transport, stop it. Optional abilities are declared in `capabilities`.

import type { Duplex } from "node:stream";
import type { Deadline } from "../deadline.ts";
import type { MachineExitedError } from "../errors.ts";
import type { Accelerator } from "../host/accelerator.ts";
import type { ExitInfo } from "../host/supervised-process.ts";
import type { ConsoleLog } from "./console-log.ts";

/** Optional abilities; calling one a backend lacks throws CORRAL_UNSUPPORTED naming both. */
export type Capability =
  | "screenshot"
  | "keys"
  | "block-links"
  | "forward-port"
  | "snapshot"
  | "pause";

export interface VmStartOptions {
  /** Machine name, used in messages and file names. */
  name: string;
  /** Folder the VM may write to (sockets, disk overlay); it exists already. */
  stateDir: string;
  accelerator: Accelerator;
  /** Keep the VM running when the guest reboots (default: a reboot ends the VM). */
  allowReboot?: boolean;
  /** Extra environment for the VMM or its start script. */
  env?: Record<string, string>;
}

/** One running VM. */
export interface RunningVm extends AsyncDisposable {
  readonly backend: string;
  readonly capabilities: ReadonlySet<Capability>;
  readonly console: ConsoleLog;
  /** Settles when the VMM process has exited; never rejects. */
  readonly exited: Promise<ExitInfo>;
  readonly hasExited: boolean;
  /** The last lines the VMM itself wrote to stderr (its own error messages). */
  vmmStderr(): string[];
  /** Resolves with the stream of the guest's backdoor shell once the VMM connects it. */
  shellStream(deadline: Deadline): Promise<Duplex>;
  /** The error for an operation that was pending when the VMM exited, with its own last words. */
  exitError(during: string, info: ExitInfo): MachineExitedError;
  /** Ends the VM: gracefully unless `force`, then forcefully after a grace period. Idempotent. */
  stop(options?: { force?: boolean }): Promise<ExitInfo>;
}
