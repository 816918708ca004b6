// The Machine of each VM that runs, while the daemon runs, watched for ending on its own (the
// guest powered off, the VMM died). A VM at rest has no Machine: each start makes one from the
// VM's spec, the same way before and after a daemon restart.

import type { Machine } from "../machine/machine.ts";

export type EndedListener = (vmId: string, machine: Machine) => void;

interface Entry {
  machine: Machine;
  unwatch: () => void;
}

export class MachineTable {
  readonly #entries = new Map<string, Entry>();
  readonly #onEnded: EndedListener;

  /** `onEnded` is called when a VM's machine ends without corral asking (state `exited`). */
  constructor(onEnded: EndedListener) {
    this.#onEnded = onEnded;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(vmId: string): Machine | undefined {
    return this.#entries.get(vmId)?.machine;
  }

  /** Keeps `machine` as VM `vmId`'s, watching it. */
  add(vmId: string, machine: Machine): void {
    const unwatch = machine.onStateChange((state) => {
      if (state === "exited") this.#onEnded(vmId, machine);
    });
    this.#entries.set(vmId, { machine, unwatch });
  }

  /**
   * Lets go of VM `vmId`'s machine: detaches from a VM that still runs (it goes on), releases
   * its folder. Does nothing when there is none, or `machine` is given and no longer the VM's.
   */
  async release(vmId: string, machine?: Machine): Promise<void> {
    const entry = this.#entries.get(vmId);
    if (!entry || (machine && entry.machine !== machine)) return;
    this.#entries.delete(vmId);
    entry.unwatch();
    await entry.machine[Symbol.asyncDispose]();
  }

  /** Lets go of every machine: their VMs run on. */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.#entries.keys()].map((vmId) => this.release(vmId)));
  }

  /** The ids of the VMs that have a machine. */
  vmIds(): string[] {
    return [...this.#entries.keys()];
  }
}
