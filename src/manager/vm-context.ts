// What the VM service's parts share: the store, the events, the running machines, the folders.

import { join } from "node:path";
import type { CorralError } from "../errors.ts";
import type { Store } from "../store/store.ts";
import type { EventHub } from "./event-hub.ts";
import type { MachineTable } from "./machine-table.ts";
import type { NetworkService } from "./networks.ts";

export interface VmContext {
  readonly store: Store;
  readonly events: EventHub;
  readonly machines: MachineTable;
  /** The manager's state folder: a VM's folder is vms/<id>, a snapshot's snapshots/<id>. */
  readonly stateDir: string;
  /** The most VMs the manager keeps; a create beyond it is refused. */
  readonly maxVms: number;
  /** The bridged networks VMs get NICs on, or why there are none (CORRAL_NETWORK_UNAVAILABLE). */
  readonly networks: NetworkService | CorralError;
}

/** The folder of VM `id`: its disks, sockets, console log and ownership record. */
export function vmFolder(context: VmContext, id: string): string {
  return join(context.stateDir, "vms", id);
}

/** The folder of snapshot `id`: its state, disk layer and manifest. */
export function snapshotFolder(context: VmContext, id: string): string {
  return join(context.stateDir, "snapshots", id);
}
