// Reconciling the store with reality when the manager starts, before the daemon answers: claims
// and jobs of the process that is gone are dropped, every VM that should run is attached to (or
// marked crashed, with the reason, when its VMM died meanwhile), and operations cut short are
// settled: a create is undone, a delete and a stop are finished, a start or restore is running.

import { CorralError, ErrorCodes } from "../errors.ts";
import { Machine } from "../machine/machine.ts";
import type { Vm } from "../store/vm-types.ts";
import type { VmContext } from "./vm-context.ts";
import { removeVm } from "./vm-create.ts";
import { recordRun } from "./vm-lifecycle.ts";
import { firstLine, liveState } from "./vm-operations.ts";
import { transitionVm } from "./vm-state-changes.ts";
import { isLive } from "./vm-states.ts";

/** Settles every VM in the store; resolves once each is attached to or marked. */
export async function reconcile(context: VmContext): Promise<void> {
  context.store.vms.releaseAll();
  context.store.jobs.failUnfinished("corral serve stopped while the job ran");
  await Promise.all(context.store.vms.list().map((vm) => reconcileVm(context, vm)));
}

async function reconcileVm(context: VmContext, vm: Vm): Promise<void> {
  if (vm.state === "creating") return removeVm(context, vm);
  if (vm.state === "deleting") {
    const machine = await attach(vm).catch(() => undefined);
    await machine?.stop();
    await machine?.[Symbol.asyncDispose]();
    return removeVm(context, vm);
  }
  if (!isLive(vm.state)) {
    if (vm.ownership !== null) context.store.vms.update(vm.id, { ownership: null });
    return;
  }
  let machine: Machine;
  try {
    machine = await attach(vm);
  } catch (error) {
    const isGone =
      error instanceof CorralError &&
      (error.code === ErrorCodes.MACHINE_EXITED || error.code === ErrorCodes.NOT_FOUND);
    const to = !isGone ? "error" : vm.state === "stopping" ? "stopped" : "crashed";
    const reason =
      error instanceof CorralError && error.code === ErrorCodes.NOT_FOUND
        ? "its VMM ended while the daemon was not running (its folder has no record of it)"
        : firstLine(error);
    transitionVm(context, vm.id, { from: vm.state, to, reason });
    context.store.vms.update(vm.id, { ownership: null });
    return;
  }
  if (vm.state === "stopping") {
    await machine.stop();
    await machine[Symbol.asyncDispose]();
    transitionVm(context, vm.id, { from: "stopping", to: "stopped" });
    context.store.vms.update(vm.id, { ownership: null });
    return;
  }
  context.machines.add(vm.id, machine);
  await recordRun(context, vm.id, machine);
  const to = liveState(machine) ?? "running";
  if (to !== vm.state) transitionVm(context, vm.id, { from: vm.state, to });
}

function attach(vm: Vm): Promise<Machine> {
  return Machine.attach(vm.stateDir, { name: vm.name });
}
