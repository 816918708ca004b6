// Waiting for a VM to reach a state, by following the manager's events (no polling).

import { AbortedError, CorralError, ErrorCodes, TimeoutError } from "../errors.ts";
import type { Vm, VmState } from "../store/vm-types.ts";
import type { VmContext } from "./vm-context.ts";

export interface WaitForStateOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/**
 * The VM once it is in `state` (at once if it is). Throws CORRAL_TIMEOUT naming the state it
 * is still in after `timeoutMs`, CORRAL_NOT_FOUND when it is (or gets) deleted, CORRAL_ABORTED
 * when `signal` fires, CORRAL_DAEMON_UNREACHABLE when the manager closes meanwhile.
 */
export function waitForState(
  context: VmContext,
  idOrName: string,
  state: VmState,
  options: WaitForStateOptions,
): Promise<Vm> {
  const vm = context.store.vms.get(idOrName);
  if (vm.state === state) return Promise.resolve(vm);
  return new Promise((resolve, reject) => {
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      unsubscribe();
      options.signal?.removeEventListener("abort", onAbort);
      outcome();
    };
    const timer = setTimeout(() => {
      const now = context.store.vms.find(vm.id);
      settle(() =>
        reject(
          new TimeoutError(
            `VM "${vm.name}" is still ${now?.state ?? vm.state} after ${options.timeoutMs} ms of waiting for ${state}`,
          ),
        ),
      );
    }, options.timeoutMs);
    const unsubscribe = context.events.subscribe(
      (event) => {
        if (event.vmId !== vm.id) return;
        if (event.type === "vm.deleted") {
          settle(() =>
            reject(new CorralError(ErrorCodes.NOT_FOUND, `VM "${vm.name}" was deleted`)),
          );
        } else if (event.type === "vm.state" && event.data.to === state) {
          settle(() => resolve(context.store.vms.get(vm.id)));
        }
      },
      () =>
        settle(() =>
          reject(new CorralError(ErrorCodes.DAEMON_UNREACHABLE, "corral serve is stopping")),
        ),
    );
    const onAbort = () =>
      settle(() => reject(new AbortedError(`waiting for VM "${vm.name}" to be ${state}`)));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
  });
}
