// The types of the vms table's rows and of the changes vms.ts makes to them.

import type { JsonObject, Labels } from "./columns.ts";

export const VM_OSES = ["linux", "windows"] as const;
export type VmOs = (typeof VM_OSES)[number];

/**
 * The states a VM row can be in: a Machine's states (machine/lifecycle.ts) and the manager's
 * own around them. Not a CHECK constraint in the schema, so that the manager can add one
 * without rebuilding the table.
 */
export const VM_STATES = [
  /** Its folder and disk are being prepared. */
  "creating",
  "created",
  "starting",
  "running",
  "paused",
  "stopping",
  "stopped",
  /** Ended without being asked while corral watched it (the guest powered off, the VMM died). */
  "exited",
  /** Its VMM was found dead when the manager started again. */
  "crashed",
  /** Being rolled back to a snapshot. */
  "restoring",
  "deleting",
  /** Something failed that needs a person: the reason says what. */
  "error",
] as const;
export type VmState = (typeof VM_STATES)[number];

export interface Vm {
  /** A ULID (ids.ts). */
  id: string;
  /** A DNS label, unique among VMs. */
  name: string;
  /** The template it was made from; its spec is a full copy, so the template may go. */
  template: string | null;
  /** The image its disk was made from. */
  imageId: string | null;
  /** The snapshot it was cloned from; its disk is a layer on the snapshot's. */
  sourceSnapshotId: string | null;
  os: VmOs;
  /** What the manager starts it with (its own schema). */
  spec: JsonObject;
  state: VmState;
  /** Why it is in its state, when that needs saying (crashed, error). */
  stateReason: string | null;
  stateChangedAt: string;
  /** The operation that holds it (claim), if any. */
  operation: string | null;
  /** Its folder: disks, sockets and the ownership record (vm.json) that Machine.attach reads. */
  stateDir: string;
  /** A copy of the ownership record of its current run (pid, sockets); null when not running. */
  ownership: JsonObject | null;
  labels: Labels;
  createdAt: string;
  updatedAt: string;
}

export interface NewVm {
  /** Its id, when the caller needed it first (to name its folder); a new ULID otherwise. */
  id?: string;
  name: string;
  template?: string | null;
  imageId?: string | null;
  sourceSnapshotId?: string | null;
  os: VmOs;
  spec: object;
  state: VmState;
  stateReason?: string | null;
  stateDir: string;
  ownership?: object | null;
  labels?: Labels;
}

export interface VmFilter {
  /** Only VMs in this state, or in one of these. */
  state?: VmState | readonly VmState[];
  /** Only VMs that carry every one of these labels with these values. */
  labels?: Labels;
}

/** What update changes; a field left out stays as it is. */
export interface VmPatch {
  spec?: object;
  /** Replaces all the labels. */
  labels?: Labels;
  ownership?: object | null;
  /** The snapshot its disk is now a layer on (a VM rolled back to a snapshot), or null. */
  sourceSnapshotId?: string | null;
}

export interface StateChange {
  /** The states the VM must be in for the change to apply. */
  from: VmState | readonly VmState[];
  to: VmState;
  /** Why; cleared when not given. */
  reason?: string | null;
}

export interface TransitionResult {
  /** Whether the VM was in one of the `from` states, and so is now in `to`. */
  applied: boolean;
  /** The VM after the attempt. */
  vm: Vm;
}

export interface Claim {
  /** The operation taking the VM ("start", "resize"…): it shows in the VM's row meanwhile. */
  operation: string;
  /** The states the operation is allowed in. */
  from: VmState | readonly VmState[];
  /** The state to enter at once, if the operation has one ("starting"). */
  to?: VmState;
  reason?: string | null;
}
