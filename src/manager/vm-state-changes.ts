// Every change of a VM's state goes through here: the store decides (claims, compare-and-set) and
// each change that happened becomes a `vm.state` event, published to the store and the listeners.

import type { Claim, StateChange, Vm, VmState } from "../store/vm-types.ts";
import type { VmContext } from "./vm-context.ts";
import { VM_TRANSITIONS, type VmOperation } from "./vm-states.ts";

/**
 * Takes the VM for `operation`, moving it to the operation's transitional state. Throws
 * CORRAL_CONFLICT naming the operation in progress, or the state that does not allow it.
 */
export function claimVm(context: VmContext, vm: Vm, operation: VmOperation): Vm {
  const { from, via } = VM_TRANSITIONS[operation];
  const claim: Claim = { operation, from, ...(via ? { to: via } : {}) };
  const claimed = context.store.vms.claim(vm.id, claim);
  publishChange(context, vm, claimed, operation);
  return claimed;
}

/** Ends `operation`'s hold on the VM, moving it to `change.to` if given. */
export function releaseVm(
  context: VmContext,
  vmId: string,
  operation: VmOperation,
  change?: { to: VmState; reason?: string | null },
): Vm | undefined {
  const before = context.store.vms.find(vmId);
  if (!before) return undefined;
  context.store.vms.release(vmId, operation, change);
  const after = context.store.vms.get(vmId);
  publishChange(context, before, after, operation);
  return after;
}

/** Moves the VM to `change.to` if it is in one of `change.from` (a change the manager observed). */
export function transitionVm(context: VmContext, vmId: string, change: StateChange): boolean {
  const before = context.store.vms.find(vmId);
  if (!before) return false;
  const { applied, vm } = context.store.vms.transition(vmId, change);
  if (applied) publishChange(context, before, vm, null);
  return applied;
}

/** Publishes the `vm.state` event of a change from `before` to `after`, if the state changed. */
export function publishChange(
  context: VmContext,
  before: Vm,
  after: Vm,
  operation: VmOperation | null,
): void {
  if (before.state === after.state) return;
  context.events.publish({
    type: "vm.state",
    vmId: after.id,
    data: {
      name: after.name,
      from: before.state,
      to: after.state,
      reason: after.stateReason,
      operation,
    },
  });
}
