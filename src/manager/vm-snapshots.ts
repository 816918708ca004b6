// Snapshots of managed VMs: taking one (Machine.snapshot into snapshots/<id>), deleting one (not
// while a VM's disk is a layer on it), and rolling a VM back to one: its VMM stops, its own disk
// layers go, and it starts again from the snapshot with a fresh overlay.

import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { Machine } from "../machine/machine.ts";
import { newId } from "../store/ids.ts";
import type { Snapshot } from "../store/snapshots.ts";
import type { Vm } from "../store/vm-types.ts";
import { userForwardOptions } from "./user-forwards.ts";
import { snapshotFolder, type VmContext } from "./vm-context.ts";
import { bootVm, recordRun, requireMachine } from "./vm-lifecycle.ts";
import { machineOptionsFor } from "./vm-machine-options.ts";
import { tapOptions } from "./vm-nics.ts";
import type { ManagedSpec } from "./vm-spec.ts";

/**
 * Saves the running or paused VM `vm` as snapshot `name` (default: the time, as
 * `20250131-235959-123`); it goes on as it was. Throws CORRAL_CONFLICT when the VM has a
 * snapshot of that name.
 */
export async function takeSnapshot(context: VmContext, vm: Vm, name: string): Promise<Snapshot> {
  const machine = requireMachine(context, vm, "snapshot");
  const id = newId();
  const folder = snapshotFolder(context, id);
  await mkdir(dirname(folder), { recursive: true, mode: 0o700 });
  await machine.snapshot(folder);
  try {
    await recordRun(context, vm.id, machine);
    const snapshot = context.store.snapshots.create({
      id,
      vmId: vm.id,
      name,
      folder,
      sizeBytes: await folderBytes(folder),
    });
    context.events.publish({
      type: "snapshot.created",
      vmId: vm.id,
      data: { snapshotId: id, name, vmName: vm.name },
    });
    return snapshot;
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
}

/** Throws CORRAL_CONFLICT before any work when VM `vm` has a snapshot named `name`. */
export function requireFreeSnapshotName(context: VmContext, vm: Vm, name: string): void {
  if (context.store.snapshots.list({ vmId: vm.id }).some((snapshot) => snapshot.name === name)) {
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `VM "${vm.name}" already has a snapshot named "${name}": pick another name`,
    );
  }
}

/** A snapshot name from the time: 20250131-235959-123. */
export function snapshotNameNow(date = new Date()): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace("T", "-")
    .replace(/\.(\d+)Z$/, "-$1");
}

/**
 * Deletes snapshot `id` and its folder. Throws CORRAL_CONFLICT naming the VMs whose disk is a
 * layer on it, CORRAL_NOT_FOUND when it does not exist.
 */
export async function deleteSnapshot(context: VmContext, id: string): Promise<void> {
  const snapshot = context.store.snapshots.remove(id);
  await rm(snapshot.folder, { recursive: true, force: true });
  context.events.publish({
    type: "snapshot.deleted",
    vmId: snapshot.vmId,
    data: { snapshotId: id, name: snapshot.name, vmName: snapshot.vmName },
  });
}

/**
 * Rolls VM `vm` back to `snapshot` (one of its own): its VMM is stopped, its disk layers
 * removed, and it starts again from the snapshot, running, with a fresh overlay on it.
 */
export async function rollBack(context: VmContext, vm: Vm, snapshot: Snapshot): Promise<void> {
  const running = context.machines.get(vm.id);
  if (running) {
    await running.stop();
    await context.machines.release(vm.id, running);
  }
  const { rootDisk: _, ...spec } = snapshot.spec as unknown as ManagedSpec;
  await removeDisks(vm.stateDir);
  const restored = context.store.vms.update(vm.id, {
    spec,
    sourceSnapshotId: snapshot.id,
    ownership: null,
  });
  const machine = await Machine.fromSnapshot(snapshot.folder, {
    ...machineOptionsFor({ ...restored, spec }, { isSnapshotStart: true }),
    ...(await tapOptions(context, restored, true)),
    ...userForwardOptions(context.store, restored.id),
  });
  await bootVm(context, restored, { machine, isRestore: true });
}

/** Throws CORRAL_CONFLICT unless `snapshot` can roll a VM back (its VM still exists). */
export function requireOwnVm(snapshot: Snapshot): string {
  if (snapshot.vmId !== null) return snapshot.vmId;
  throw new CorralError(
    ErrorCodes.CONFLICT,
    `snapshot "${snapshot.name}" was of VM "${snapshot.vmName}", which is deleted: clone it instead (POST /v1/vms with fromSnapshot)`,
  );
}

/** Removes the VM's own disk layers (its snapshots never back onto them). */
async function removeDisks(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names.filter((name) => name.endsWith(".qcow2")).map((name) => rm(join(dir, name))),
  );
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  // On disk: a snapshot's memory file is as big as the guest's RAM but mostly holes.
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).blocks * 512;
  return total;
}
