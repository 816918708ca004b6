// Running one operation on a VM: claim it (409 when busy or in the wrong state), do the work,
// release it in the state the work reached — or, when the work failed, in the state the VM is
// really in. The caller waits for the end, or gets the VM at once in its transitional state.

import type { Machine } from "../machine/machine.ts";
import type { Vm, VmState } from "../store/vm-types.ts";
import type { VmContext } from "./vm-context.ts";
import { claimVm, releaseVm } from "./vm-state-changes.ts";
import { ENDED_STATES, VM_TRANSITIONS, type VmOperation } from "./vm-states.ts";

export interface Outcome {
  /** The state to end in; default: the operation's `to`, else the state before it. */
  to?: VmState;
  reason?: string | null;
}

export interface OperationResult {
  /** The VM when the call returns: after the operation, or in its transitional state. */
  vm: Vm;
  /** Whether the operation has ended (false: `wait: false`, it goes on). */
  isDone: boolean;
}

/**
 * Claims `vm` for `operation` and runs `work` on it. With `wait` it returns once the work has
 * ended (and throws its error); without, at once, the work going on. Throws CORRAL_CONFLICT when
 * the VM is busy or its state does not allow the operation.
 */
export async function runOperation(
  context: VmContext,
  vm: Vm,
  operation: VmOperation,
  work: (vm: Vm) => Promise<Outcome | undefined>,
  options: { wait: boolean },
): Promise<OperationResult> {
  const claimed = claimVm(context, vm, operation);
  const transition = VM_TRANSITIONS[operation];
  const done = (async () => {
    let outcome: Outcome | undefined;
    try {
      outcome = await work(claimed);
    } catch (error) {
      const failed = await failedState(context, vm, operation, error);
      releaseVm(context, vm.id, operation, failed);
      throw error;
    }
    const to = outcome?.to ?? transition.to ?? (transition.via ? vm.state : undefined);
    releaseVm(context, vm.id, operation, to ? { to, reason: outcome?.reason ?? null } : undefined);
  })();
  if (!options.wait) {
    done.catch(() => undefined);
    return { vm: claimed, isDone: false };
  }
  await done;
  return { vm: context.store.vms.find(vm.id) ?? claimed, isDone: true };
}

/**
 * Where a VM is after `operation` failed on it: as its machine is when one still runs; else back
 * where it was when that was a state at rest, `error` when it was being started, and `crashed`
 * when it was running (its VMM died meanwhile). Lets go of a machine that has ended.
 */
async function failedState(
  context: VmContext,
  before: Vm,
  operation: VmOperation,
  error: unknown,
): Promise<{ to: VmState; reason: string }> {
  const reason = firstLine(error);
  const machine = context.machines.get(before.id);
  const live = machine && liveState(machine);
  if (live) return { to: live, reason };
  if (machine) await context.machines.release(before.id, machine);
  if (ENDED_STATES.includes(before.state)) {
    return { to: isBoot(operation) ? "error" : before.state, reason };
  }
  return { to: "crashed", reason };
}

/** The manager state of a machine whose VMM runs; undefined when it has ended. */
export function liveState(machine: Machine): VmState | undefined {
  switch (machine.state) {
    case "starting":
    case "running":
      return "running";
    case "paused":
      return "paused";
    default:
      return undefined;
  }
}

function isBoot(operation: VmOperation): boolean {
  return operation === "start" || operation === "restore" || operation === "reboot";
}

/** An error's message without the detail lines (console tails) under it. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0] ?? message;
}
