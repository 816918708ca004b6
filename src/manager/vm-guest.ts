// A managed VM's guest operations: through the channel its spec forces (`guestChannel`) or the
// probe chose (channel-probe.ts), found once per start of the VM and kept with its Machine.

import { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { Machine } from "../machine/machine.ts";
import type { Vm } from "../store/vm-types.ts";
import { type GuestChannelChoice, openGuestOps } from "./guest/channel-probe.ts";
import type { GuestOps } from "./guest/guest-ops.ts";
import type { VmContext } from "./vm-context.ts";
import type { ManagedSpec } from "./vm-spec.ts";

/** How long the first guest operation of a VM waits for a channel to answer, by default. */
export const GUEST_PROBE_TIMEOUT_MS = 30_000;

export class VmGuests {
  readonly #opened = new WeakMap<Machine, Promise<GuestOps>>();

  /**
   * The guest operations of `vm`. Throws CORRAL_MACHINE_NOT_RUNNING (409) naming its state when
   * it is not running (as the console does), CORRAL_UNSUPPORTED when no channel answers within `timeoutMs` (default 30 s; a
   * later call probes again), the deadline's TimeoutError when a forced one does not.
   */
  open(context: VmContext, vm: Vm, options: { timeoutMs?: number } = {}): Promise<GuestOps> {
    const machine = context.machines.get(vm.id);
    if (vm.state !== "running" || !machine) {
      throw new CorralError(
        ErrorCodes.MACHINE_NOT_RUNNING,
        `VM "${vm.name}" is ${vm.state}${vm.state === "running" ? " under no VMM of this daemon" : ""}: guest operations need it running (corral vm start ${vm.name})`,
      );
    }
    const cached = this.#opened.get(machine);
    if (cached) return cached;
    const spec = vm.spec as unknown as ManagedSpec;
    // A Windows guest has no backdoor shell to wait for.
    const choice: GuestChannelChoice =
      spec.guestChannel === "auto" && vm.os === "windows" ? "qga" : spec.guestChannel;
    const deadline = new Deadline(
      `VM "${vm.name}": finding its guest channel (${choice})`,
      { timeout: options.timeoutMs ?? GUEST_PROBE_TIMEOUT_MS },
      GUEST_PROBE_TIMEOUT_MS,
    );
    const opening = openGuestOps(machine, choice, deadline);
    this.#opened.set(machine, opening);
    opening.catch(() => {
      if (this.#opened.get(machine) === opening) this.#opened.delete(machine);
    });
    return opening;
  }
}
