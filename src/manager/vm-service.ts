// The VM service: every managed VM is a persistent Machine with its folder under
// <stateDir>/vms/<id>/. Each call finds the VM by id or name, claims it for one operation (the
// state table in vm-states.ts), drives its Machine, and answers with the VM as the API shows it.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { Machine } from "../machine/machine.ts";
import type { Labels } from "../store/columns.ts";
import type { Store } from "../store/store.ts";
import type { Vm, VmOs, VmState } from "../store/vm-types.ts";
import type { EventHub } from "./event-hub.ts";
import type { GuestCapabilities, GuestOps } from "./guest/guest-ops.ts";
import { MachineTable } from "./machine-table.ts";
import type { NetworkService } from "./networks.ts";
import type { VmContext } from "./vm-context.ts";
import { createVm, removeVm } from "./vm-create.ts";
import { VmGuests } from "./vm-guest.ts";
import { bootVm, howItEnded, powerOff, rebootVm, requireMachine } from "./vm-lifecycle.ts";
import { machineOptionsFor } from "./vm-machine-options.ts";
import { type OperationResult, type Outcome, runOperation } from "./vm-operations.ts";
import { reconcile } from "./vm-reconcile.ts";
import type {
  CreateVmRequest,
  PatchVmRequest,
  ResizeVmRequest,
  StopVmRequest,
  VmViewType,
} from "./vm-schemas.ts";
import {
  deleteSnapshot,
  requireFreeSnapshotName,
  requireOwnVm,
  rollBack,
  snapshotNameNow,
  takeSnapshot,
} from "./vm-snapshots.ts";
import { checkLimits, hasBackdoorShell, type ManagedSpec } from "./vm-spec.ts";
import { claimVm, releaseVm, transitionVm } from "./vm-state-changes.ts";
import { LIVE_STATES } from "./vm-states.ts";
import { type VmStats, vmStats } from "./vm-stats.ts";
import { type SnapshotViewType, toSnapshotView, toVmView } from "./vm-views.ts";
import { waitForState } from "./vm-wait.ts";

export interface VmServiceOptions {
  store: Store;
  events: EventHub;
  /** The manager's state folder (VMs under vms/, snapshots under snapshots/). */
  stateDir: string;
  /** The most VMs kept; default 64. */
  maxVms?: number;
  /** The bridged networks, or why there are none; default: none. */
  networks?: NetworkService | CorralError;
}

/** A call's answer: the VM, and whether its operation has ended (false: 202, it goes on). */
export interface VmResult {
  vm: VmViewType;
  isDone: boolean;
}

export interface WaitOption {
  /** Wait for the operation to end (default); false: return at once, the VM in transition. */
  wait?: boolean | undefined;
}

export class VmService {
  readonly #context: VmContext;
  readonly #guests = new VmGuests();

  constructor(options: VmServiceOptions) {
    this.#context = {
      store: options.store,
      events: options.events,
      stateDir: options.stateDir,
      maxVms: options.maxVms ?? 64,
      networks:
        options.networks ??
        new CorralError(ErrorCodes.NETWORK_UNAVAILABLE, "this VM service has no networks"),
      machines: new MachineTable((vmId, machine) => this.#onEnded(vmId, machine)),
    };
  }

  /** Reconciles the store with the VMs that run (vm-reconcile.ts); the manager calls it first. */
  reconcile(): Promise<void> {
    return reconcile(this.#context);
  }

  /** Changes whenever a VM may have changed: list() answers the same until it does. */
  get revision(): number {
    return this.#context.store.vms.revision;
  }

  /** The VMs, optionally only those in `state` and carrying every label in `labels`. */
  list(filter: { state?: VmState | undefined; labels?: Labels | undefined } = {}): VmViewType[] {
    const { store } = this.#context;
    const nics = Map.groupBy(store.nics.list(), (nic) => nic.vmId);
    return store.vms
      .list({
        ...(filter.state ? { state: filter.state } : {}),
        ...(filter.labels ? { labels: filter.labels } : {}),
      })
      .map((vm) => toVmView(vm, nics.get(vm.id) ?? []));
  }

  /** The VM with this id or name; CORRAL_NOT_FOUND when there is none. */
  get(idOrName: string): VmViewType {
    return this.#view(this.#vm(idOrName));
  }

  /**
   * Creates a VM (see createVm for what it throws) and, unless `start: false`, starts it:
   * `isDone` false when it was asked not to wait for the start.
   */
  async create(
    request: CreateVmRequest,
    options: WaitOption & { os?: VmOs } = {},
  ): Promise<VmResult> {
    const vm = await createVm(this.#context, request, options.os);
    if (request.start === false) return { vm: this.#view(vm), isDone: true };
    return this.#result(
      runOperation(this.#context, vm, "start", (claimed) => this.#boot(claimed), {
        wait: options.wait ?? true,
      }),
    );
  }

  /**
   * Changes a VM's labels (at any time), or its vCPUs and memory for its next start (only while
   * it is not running: CORRAL_CONFLICT naming its state otherwise).
   */
  async update(idOrName: string, patch: PatchVmRequest): Promise<VmViewType> {
    const vm = this.#vm(idOrName);
    const { store } = this.#context;
    if (patch.cpus === undefined && patch.memoryMiB === undefined) {
      return this.#view(store.vms.update(vm.id, patch.labels ? { labels: patch.labels } : {}));
    }
    const claimed = claimVm(this.#context, vm, "update");
    try {
      const spec = this.#resized(claimed, patch, "update");
      store.vms.update(vm.id, { spec, ...(patch.labels ? { labels: patch.labels } : {}) });
    } finally {
      releaseVm(this.#context, vm.id, "update");
    }
    return this.get(vm.id);
  }

  /** Stops the VM if it runs and removes its folder and record; its snapshots stay. */
  delete(idOrName: string, options: WaitOption = {}): Promise<VmResult> {
    const vm = this.#vm(idOrName);
    return this.#result(
      runOperation(
        this.#context,
        vm,
        "delete",
        async (claimed) => {
          await powerOff(this.#context, claimed, { force: true });
          await removeVm(this.#context, claimed);
          return undefined;
        },
        { wait: options.wait ?? true },
      ),
    );
  }

  /** Starts a VM at rest and waits until it runs (its shell answers, when it has one). */
  start(idOrName: string, options: WaitOption = {}): Promise<VmResult> {
    const vm = this.#vm(idOrName);
    machineOptionsFor({ ...vm, spec: vm.spec as unknown as ManagedSpec });
    return this.#operation(vm, "start", options, (claimed) => this.#boot(claimed));
  }

  /**
   * Powers the VM off: asks the guest, and forces it off after a grace period (default 30 s; its
   * `stateReason` then says so); at once with `force`.
   */
  stop(idOrName: string, request: StopVmRequest & WaitOption = {}): Promise<VmResult> {
    return this.#operation(this.#vm(idOrName), "stop", request, async (claimed) => ({
      reason: await powerOff(this.#context, claimed, request),
    }));
  }

  reboot(idOrName: string, options: WaitOption = {}): Promise<VmResult> {
    return this.#operation(this.#vm(idOrName), "reboot", options, async (claimed) => {
      await rebootVm(this.#context, claimed);
      return undefined;
    });
  }

  /** Pauses the guest's CPUs (and clock). */
  pause(idOrName: string, options: WaitOption = {}): Promise<VmResult> {
    return this.#operation(this.#vm(idOrName), "pause", options, async (claimed) => {
      await requireMachine(this.#context, claimed, "pause").pause();
      return undefined;
    });
  }

  resume(idOrName: string, options: WaitOption = {}): Promise<VmResult> {
    return this.#operation(this.#vm(idOrName), "resume", options, async (claimed) => {
      await requireMachine(this.#context, claimed, "resume").resume();
      return undefined;
    });
  }

  /**
   * Resizes a VM. A running VM grows at once (Machine.resize: vCPUs and memory hot-plugged, the
   * disk grown) and the call returns once its guest sees it; the VM keeps that size. At rest,
   * its vCPUs and memory change for its next start, and so does its disk while it has none yet
   * (never started). Throws CORRAL_CONFLICT naming the limit when asked to shrink a running VM
   * or a disk, or to pass its template's `max` (the VM's copy of it), and for a disk of a VM at
   * rest that has one or a running VM without corral's guest shell (it could not see the guest
   * take the growth); CORRAL_INVALID_ARGUMENT for memory not grown in whole steps (128 MiB);
   * CORRAL_UNSUPPORTED for a running microvm (no bus to plug into).
   */
  async resize(idOrName: string, request: ResizeVmRequest): Promise<VmViewType> {
    const vm = this.#vm(idOrName);
    const claimed = claimVm(this.#context, vm, "resize");
    try {
      const spec = this.#resized(claimed, request, "resize");
      if (vm.state === "running") await this.#resizeRunning(claimed, request);
      else {
        if (request.diskGiB !== undefined) requireDiskToMake(claimed, request.diskGiB);
        this.#context.store.vms.update(vm.id, { spec });
      }
    } finally {
      releaseVm(this.#context, vm.id, "resize");
    }
    return this.get(vm.id);
  }

  /** The VM once it is in `state`; see waitForState for the errors. */
  async waitFor(
    idOrName: string,
    state: VmState,
    options: { timeoutMs: number; signal?: AbortSignal | undefined },
  ): Promise<VmViewType> {
    return this.#view(await waitForState(this.#context, idOrName, state, options));
  }

  /** The VM's VMM CPU time and RSS, its disks' I/O and its uptime (nulls when it does not run). */
  stats(idOrName: string): Promise<VmStats> {
    return vmStats(this.#context, this.#vm(idOrName));
  }

  /** The Machine of a VM that runs under this daemon, for guest operations. */
  machineOf(idOrName: string): Machine | undefined {
    return this.#context.machines.get(this.#vm(idOrName).id);
  }

  /**
   * The guest operations of a running VM (exec, files, info, processes, services, logs), through
   * the channel its spec forces or the probe chose at first use: the backdoor shell if it
   * answers, else qemu-ga. Throws CORRAL_MACHINE_NOT_RUNNING naming the VM's state when it is not
   * running,
   * CORRAL_UNSUPPORTED "no guest channel" when neither answers within `timeoutMs` (default 30 s).
   */
  async guest(idOrName: string, options: { timeoutMs?: number } = {}): Promise<GuestOps> {
    return this.#guests.open(this.#context, this.#vm(idOrName), options);
  }

  /** The channel that reaches a running VM's guest and what it can do (see guest()). */
  async guestCapabilities(
    idOrName: string,
    options: { timeoutMs?: number } = {},
  ): Promise<GuestCapabilities> {
    return (await this.guest(idOrName, options)).capabilities;
  }

  // --- snapshots -----------------------------------------------------------------------------

  /** Saves a running or paused VM as a snapshot; it goes on as it was. */
  async snapshot(idOrName: string, request: { name?: string | undefined } = {}) {
    const vm = this.#vm(idOrName);
    const name = request.name ?? snapshotNameNow();
    requireFreeSnapshotName(this.#context, vm, name);
    let snapshot: SnapshotViewType | undefined;
    await runOperation(
      this.#context,
      vm,
      "snapshot",
      async (claimed) => {
        snapshot = toSnapshotView(await takeSnapshot(this.#context, claimed, name));
        return undefined;
      },
      { wait: true },
    );
    return snapshot as SnapshotViewType;
  }

  /** The snapshots, only those of VM `vm` (id or name) when given. */
  listSnapshots(filter: { vm?: string | undefined } = {}): SnapshotViewType[] {
    const vmId = filter.vm === undefined ? undefined : this.#vmIdForSnapshots(filter.vm);
    return this.#context.store.snapshots
      .list(vmId === undefined ? {} : { vmId })
      .map(toSnapshotView);
  }

  getSnapshot(id: string): SnapshotViewType {
    return toSnapshotView(this.#context.store.snapshots.get(id));
  }

  /** Deletes a snapshot; CORRAL_CONFLICT while a VM's disk is a layer on it. */
  deleteSnapshot(id: string): Promise<void> {
    return deleteSnapshot(this.#context, id);
  }

  /** Rolls the snapshot's VM back to it; the VM runs from the snapshot's state after. */
  restore(snapshotId: string, options: WaitOption = {}): Promise<VmResult> {
    const snapshot = this.#context.store.snapshots.get(snapshotId);
    const vm = this.#context.store.vms.get(requireOwnVm(snapshot));
    return this.#operation(vm, "restore", options, async (claimed) => {
      await rollBack(this.#context, claimed, snapshot);
      return undefined;
    });
  }

  /**
   * Lets go of every VM: they run on (a later daemon attaches to them), or are stopped first
   * with `stopVms` (ACPI with a grace period, then forced).
   */
  async close(options: { stopVms?: boolean; graceMs?: number } = {}): Promise<void> {
    if (options.stopVms) {
      await Promise.all(
        this.#context.machines
          .vmIds()
          .map((vmId) => this.stop(vmId, { graceMs: options.graceMs }).catch(() => undefined)),
      );
    }
    await this.#context.machines.releaseAll();
  }

  // --- internals -----------------------------------------------------------------------------

  #vm(idOrName: string): Vm {
    return this.#context.store.vms.get(idOrName);
  }

  #view(vm: Vm): VmViewType {
    return toVmView(vm, this.#context.store.nics.listByVm(vm.id));
  }

  #vmIdForSnapshots(idOrName: string): string {
    const vm = this.#context.store.vms.find(idOrName);
    return vm?.id ?? idOrName;
  }

  async #boot(vm: Vm): Promise<undefined> {
    await bootVm(this.#context, vm);
    return undefined;
  }

  #operation(
    vm: Vm,
    operation: "start" | "stop" | "reboot" | "pause" | "resume" | "restore",
    options: WaitOption,
    work: (vm: Vm) => Promise<Outcome | undefined>,
  ): Promise<VmResult> {
    return this.#result(
      runOperation(this.#context, vm, operation, work, { wait: options.wait ?? true }),
    );
  }

  async #result(running: Promise<OperationResult>): Promise<VmResult> {
    const { vm, isDone } = await running;
    return { vm: this.#view(vm), isDone };
  }

  /** The VM's spec with the size of `size`, checked against its template's limits. */
  #resized(
    vm: Vm,
    size: {
      cpus?: number | undefined;
      memoryMiB?: number | undefined;
      diskGiB?: number | undefined;
    },
    operation: "update" | "resize",
  ): ManagedSpec {
    const spec = vm.spec as unknown as ManagedSpec;
    const next = {
      ...spec,
      ...(size.cpus !== undefined ? { cpus: size.cpus } : {}),
      ...(size.memoryMiB !== undefined ? { memoryMiB: size.memoryMiB } : {}),
      ...(size.diskGiB !== undefined ? { diskGiB: size.diskGiB } : {}),
    };
    try {
      checkLimits(next, vm.template ?? undefined);
    } catch (error) {
      if (operation === "update") throw error;
      throw new CorralError(ErrorCodes.CONFLICT, (error as Error).message, { cause: error });
    }
    if (operation === "resize" && LIVE_STATES.includes(vm.state)) {
      const shrinks = (["cpus", "memoryMiB"] as const).filter((field) => next[field] < spec[field]);
      if (shrinks.length > 0) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `VM "${vm.name}" is ${vm.state}: a running VM only grows; ${shrinks.map((field) => `${field} is ${spec[field]}, asked ${next[field]}`).join("; ")}`,
        );
      }
    }
    return next;
  }

  /** Grows the running VM's machine and records the size it then has, also when it failed. */
  async #resizeRunning(vm: Vm, request: ResizeVmRequest): Promise<void> {
    if (!hasBackdoorShell(vm.spec as unknown as ManagedSpec)) {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `VM "${vm.name}" is running: resize: a running VM grows only with corral's guest shell in it (corral's images), to see the guest take the new vCPUs and memory; stop it, resize it and start it again`,
      );
    }
    const machine = requireMachine(this.#context, vm, "resize");
    try {
      await machine.resize(request);
    } finally {
      const size = await machine.getSize().catch(() => undefined);
      if (size) {
        const spec = this.#context.store.vms.get(vm.id).spec as unknown as ManagedSpec;
        const isDiskGrown =
          request.diskGiB !== undefined && size.diskBytes >= request.diskGiB * 2 ** 30;
        this.#context.store.vms.update(vm.id, {
          spec: {
            ...spec,
            cpus: size.cpus,
            memoryMiB: size.memoryMiB,
            ...(isDiskGrown ? { diskGiB: request.diskGiB } : {}),
          },
        });
      }
    }
  }

  /** A VM's machine ended without being asked: the VM is `exited` or `crashed`, with why. */
  #onEnded(vmId: string, machine: Machine): void {
    const vm = this.#context.store.vms.find(vmId);
    if (vm && vm.operation !== null) return;
    if (vm) {
      const ending = howItEnded(machine);
      transitionVm(this.#context, vmId, {
        from: ["starting", "running", "paused"],
        to: ending.state,
        reason: ending.reason,
      });
      this.#context.store.vms.update(vmId, { ownership: null });
    }
    void this.#context.machines.release(vmId, machine);
  }
}

/**
 * Throws CORRAL_CONFLICT unless the VM at rest has no disk yet (made, never started, not a
 * clone) and `diskGiB` is at least what it is to be made with: a disk that exists grows while
 * its VM runs.
 */
function requireDiskToMake(vm: Vm, diskGiB: number): void {
  const spec = vm.spec as unknown as ManagedSpec;
  const refuse = (why: string) =>
    new CorralError(ErrorCodes.CONFLICT, `VM "${vm.name}" is ${vm.state}: resize: ${why}`);
  if (vm.state !== "created" || vm.sourceSnapshotId !== null) {
    throw refuse("its disk exists, and a disk grows while its VM runs: start it, then resize it");
  }
  if (spec.diskGiB === null) {
    throw refuse("its disk is to be its image's as it is: start it, then grow the disk");
  }
  if (diskGiB < spec.diskGiB) {
    throw refuse(
      `diskGiB ${diskGiB} is less than the ${spec.diskGiB} GiB its disk is to be made with: a disk only grows`,
    );
  }
}
