// The manager's VM lifecycle as data: every operation, the states it is allowed in, the
// transitional state it shows while it runs, and where it leads. An operation claims the VM in
// the store (so two never interleave); one not allowed in the VM's state is refused with a 409
// naming the state. docs/manager.md shows the same table.

import type { VmState } from "../store/vm-types.ts";

export type VmOperation =
  | "start"
  | "stop"
  | "reboot"
  | "pause"
  | "resume"
  | "resize"
  | "update"
  | "snapshot"
  | "restore"
  | "delete";

export interface VmTransition {
  /** The states the operation is allowed in. */
  from: readonly VmState[];
  /** The state the VM shows while the operation runs, if it has one. */
  via?: VmState;
  /** The state it leads to; none: it leaves the state as it was. */
  to?: VmState;
}

/** Not running: nothing to attach to, the disk is at rest. */
export const ENDED_STATES: readonly VmState[] = [
  "created",
  "stopped",
  "exited",
  "crashed",
  "error",
];
/** A VMM runs (or should): the daemon attaches to these when it starts. */
export const LIVE_STATES: readonly VmState[] = ["starting", "running", "paused", "stopping"];

export const VM_TRANSITIONS: Readonly<Record<VmOperation, VmTransition>> = {
  start: { from: ENDED_STATES, via: "starting", to: "running" },
  stop: { from: ["starting", "running", "paused"], via: "stopping", to: "stopped" },
  reboot: { from: ["running"], via: "starting", to: "running" },
  pause: { from: ["running"], to: "paused" },
  resume: { from: ["paused"], to: "running" },
  resize: { from: [...ENDED_STATES, "running"] },
  /** PATCH of cpus or memory: the next start uses them. */
  update: { from: ENDED_STATES },
  snapshot: { from: ["running", "paused"] },
  restore: { from: [...ENDED_STATES, "running", "paused"], via: "restoring", to: "running" },
  delete: { from: [...ENDED_STATES, "running", "paused", "starting"], via: "deleting" },
};

/** What a VM found dead was doing decides what it becomes (reconcile, watching). */
export function isLive(state: VmState): boolean {
  return LIVE_STATES.includes(state) || state === "restoring";
}
