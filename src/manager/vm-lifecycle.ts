// The work of the lifecycle operations on one VM's Machine: boot (a fresh Machine from the spec,
// or from the snapshot a clone was made of), power down (ACPI, then forced), reboot, pause,
// resume. Claims and states are vm-operations.ts's; this file only drives the machine.

import { createHash } from "node:crypto";
import { readVmRecord } from "../backends/vm-record.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { Machine } from "../machine/machine.ts";
import type { Vm } from "../store/vm-types.ts";
import { isNamedThroughAgent, nameThroughAgent } from "./guest-name.ts";
import { settleUserForwards, userForwardOptions } from "./user-forwards.ts";
import type { VmContext } from "./vm-context.ts";
import { machineOptionsFor } from "./vm-machine-options.ts";
import { settleNics, tapOptions } from "./vm-nics.ts";
import { hasBackdoorShell, type ManagedSpec } from "./vm-spec.ts";

/** How long a booting guest's backdoor shell may take to answer. */
const SHELL_TIMEOUT_MS = 300_000;
/** The grace period of a stop when the request gives none. */
export const DEFAULT_STOP_GRACE_MS = 30_000;

/** A Machine of a VM, and whether it restores a snapshot rather than booting. */
export interface VmMachine {
  machine: Machine;
  isRestore: boolean;
}

/** The Machine of VM `vm`, made from its spec (a clone's first start restores its snapshot). */
async function newMachine(context: VmContext, vm: Vm): Promise<VmMachine> {
  const spec = vm.spec as unknown as ManagedSpec;
  const isRestore = vm.sourceSnapshotId !== null && spec.rootDisk === undefined;
  const options = {
    ...machineOptionsFor({ ...vm, spec }, { isSnapshotStart: isRestore }),
    ...(await tapOptions(context, vm, isRestore)),
    ...userForwardOptions(context.store, vm.id),
  };
  if (vm.sourceSnapshotId !== null && isRestore) {
    const snapshot = context.store.snapshots.get(vm.sourceSnapshotId);
    return { machine: await Machine.fromSnapshot(snapshot.folder, options), isRestore };
  }
  return { machine: new Machine(options), isRestore };
}

/**
 * Starts VM `vm` (with `made`, a Machine made for it already) and waits until it runs: its
 * backdoor shell answers (with its hostname and machine id set, its NICs' addresses leased) or,
 * without one, its VMM runs (a Linux guest without a cloud-init seed is named through its agent
 * once that answers, in the background: guest-name.ts). A failed start leaves nothing running.
 */
export async function bootVm(context: VmContext, vm: Vm, made?: VmMachine): Promise<void> {
  const { machine: booting, isRestore } = made ?? (await newMachine(context, vm));
  context.machines.add(vm.id, booting);
  try {
    await booting.start();
    await settleStarted(context, vm, booting, isRestore);
  } catch (error) {
    await booting.stop().catch(() => undefined);
    await context.machines.release(vm.id, booting);
    throw error;
  }
}

/**
 * After a (re)start: waits for the guest's shell and gives the guest the VM's identity and its
 * NICs' addresses (settleNics; `isRestore`: it restored a snapshot), then records the run (pid,
 * start time) and the disk the VM now boots from.
 */
export async function settleStarted(
  context: VmContext,
  vm: Vm,
  machine: Machine,
  isRestore = false,
): Promise<void> {
  const spec = vm.spec as unknown as ManagedSpec;
  if (hasBackdoorShell(spec)) {
    await machine.waitForShell({ timeout: SHELL_TIMEOUT_MS });
    await machine.succeed(identityCommand(vm, spec.cloudInit?.hostname), { timeout: 60_000 });
  } else if (isNamedThroughAgent(vm)) {
    nameThroughAgent(context, vm, machine);
  }
  await settleNics(context, vm, machine, isRestore);
  if (hasBackdoorShell(spec)) await settleUserForwards(context.store, vm, machine);
  await recordRun(context, vm.id, machine);
}

/** Records the VMM's ownership record and the disk overlay the VM boots from now. */
export async function recordRun(context: VmContext, vmId: string, machine: Machine): Promise<void> {
  const current = context.store.vms.get(vmId);
  const record = await readVmRecord(current.stateDir);
  const { rootDisk: _, ...spec } = current.spec as unknown as ManagedSpec;
  const rootDisk = machine.rootDisk;
  context.store.vms.update(vmId, {
    spec: rootDisk === undefined ? spec : { ...spec, rootDisk },
    ownership: {
      backend: record.backend,
      pid: record.pid,
      startTime: record.startTime,
      startedAt: record.startedAt,
      accelerator: record.accelerator,
    },
  });
}

/**
 * The guest command that names it after its VM (or `hostname`, its cloud-init data's): hostname,
 * /etc/hostname, /etc/hosts, and a machine id of its own (a clone has its snapshot's, every VM of
 * one image the image's). Bash builtins only: a forked program costs ~100 ms under TCG, and a
 * clone waits for this.
 */
export function identityCommand(vm: Pick<Vm, "id" | "name">, hostname = vm.name): string {
  const machineId = createHash("sha256").update(vm.id).digest("hex").slice(0, 32);
  return [
    `echo ${hostname} > /proc/sys/kernel/hostname`,
    `echo ${hostname} > /etc/hostname`,
    `echo ${machineId} > /etc/machine-id`,
    "mapfile -t hosts < /etc/hosts",
    `for i in "\${!hosts[@]}"; do if [[ \${hosts[i]} == 127.0.1.1[[:space:]]* ]]; then hosts[i]=$'127.0.1.1\\t${hostname}'; fi; done`,
    `printf '%s\\n' "\${hosts[@]}" > /etc/hosts`,
  ].join(" && ");
}

/**
 * Ends the VM and says why it had to be forced off, if it was (null: it powered off, or `force`
 * asked for it). With `force` (or `graceMs` 0) its VMM quits at once. Otherwise the guest is
 * asked to power off and forced off when `graceMs` have passed: through its backdoor shell when
 * that answers, else by the ACPI power button (Machine.powerDown; a paused VM is resumed first,
 * so that its guest sees the button).
 */
export async function powerOff(
  context: VmContext,
  vm: Vm,
  options: { force?: boolean | undefined; graceMs?: number | undefined },
): Promise<string | null> {
  const machine = context.machines.get(vm.id);
  let reason: string | null = null;
  if (machine) {
    const graceMs = options.graceMs ?? DEFAULT_STOP_GRACE_MS;
    const forced = `the guest did not power off within ${graceMs} ms: forced off`;
    const spec = vm.spec as unknown as ManagedSpec;
    if (options.force || graceMs === 0) await machine.stop();
    else if (hasBackdoorShell(spec) && machine.isUp() && machine.state === "running") {
      // `poweroff` through the shell ends the guest whatever its ACPI handling: under TCG a
      // guest that boots slowly may not watch the power button yet (systemd-logind starts late)
      // and a press before then is lost, so the button alone makes a stop slow or forced.
      await machine.shutdown({ timeout: graceMs }).catch(async () => {
        reason = forced;
        await machine.stop();
      });
    } else if ((await machine.powerDown({ graceMs })).isForced) reason = forced;
    await context.machines.release(vm.id, machine);
  }
  context.store.vms.update(vm.id, { ownership: null });
  return reason;
}

/** Reboots the VM (the guest's own reboot when it has the backdoor shell) and waits for it. */
export async function rebootVm(context: VmContext, vm: Vm): Promise<void> {
  const machine = requireMachine(context, vm, "reboot");
  if (hasBackdoorShell(vm.spec as unknown as ManagedSpec)) {
    await machine.reboot({ timeout: SHELL_TIMEOUT_MS });
  } else {
    await machine.stop();
    await machine.start();
  }
  await settleStarted(context, vm, machine);
}

/** The machine of a VM that runs; CORRAL_MACHINE_NOT_RUNNING when the daemon has none. */
export function requireMachine(context: VmContext, vm: Vm, operation: string): Machine {
  const machine = context.machines.get(vm.id);
  if (machine) return machine;
  throw new CorralError(
    ErrorCodes.MACHINE_NOT_RUNNING,
    `VM "${vm.name}": ${operation}: no VMM of it runs under this daemon`,
  );
}

/** Whether the VM ended because its guest powered off or rebooted, or because its VMM died. */
export function howItEnded(machine: Machine): { state: "exited" | "crashed"; reason: string } {
  const tail = machine.consoleLines.slice(-50);
  if (tail.some((line) => line.includes("reboot: Power down"))) {
    return { state: "exited", reason: "the guest powered off" };
  }
  if (tail.some((line) => line.includes("reboot: Restarting system"))) {
    return { state: "exited", reason: "the guest rebooted, which ends its VM: start it again" };
  }
  return { state: "crashed", reason: "its VMM ended without the guest powering off" };
}
