// Port forwards of a daemon without networks: QEMU `hostfwd` rules of the VM's user-mode NIC
// (every managed VM has one). Each is a row of the store; a VM that runs gets it at once through
// the monitor, and every start gives it all of its rows (`-netdev user,hostfwd=…`), so they
// survive a restart. They go with the VM (its row, its QEMU).

import { CorralError, ErrorCodes } from "../errors.ts";
import { probePort } from "../host/local-port.ts";
import type { Machine } from "../machine/machine.ts";
import {
  ANY_ADDRESS,
  describeHostPort,
  type HostPort,
  type Protocol,
  requireHostAddress,
} from "../network/port-forward.ts";
import { type PortForward, USER_NET_GUEST_ADDRESS } from "../store/port-forwards.ts";
import type { Store } from "../store/store.ts";
import type { Vm } from "../store/vm-types.ts";
import type { CreatePortForwardRequest, PortForwardViewType } from "./network-schemas.ts";

/** corral's images give the user-mode NIC its address with it (a udev rule). */
const NETWORK_SETUP = "/usr/local/lib/corral/network-setup";
/** How long a guest's user-mode NIC may take to get its address once its shell answers. */
const USER_NIC_TIMEOUT_MS = 120_000;

/** What a user-mode forward needs of the manager: the store, and a VM's running Machine. */
export interface UserForwardContext {
  store: Store;
  machineOf(vmId: string): Machine | undefined;
}

/**
 * Forwards a host port to `request.guestPort` of VM `vmId` through its user-mode NIC. Throws
 * CORRAL_CONFLICT when corral forwards the port already or anything on the host has it (naming
 * it), CORRAL_NETWORK_UNAVAILABLE for a `network` (there are none), CORRAL_INVALID_ARGUMENT for
 * an address the host lacks.
 */
export async function addUserForward(
  context: UserForwardContext,
  vmId: string,
  request: CreatePortForwardRequest,
): Promise<PortForwardViewType> {
  if (request.network !== undefined) {
    throw new CorralError(
      ErrorCodes.NETWORK_UNAVAILABLE,
      `no network "${request.network}": this daemon has no networks, and a forward goes to the VM's user-mode NIC; leave network out`,
    );
  }
  const wanted: HostPort = {
    hostAddress: requireHostAddress(request.hostAddress ?? ANY_ADDRESS),
    hostPort: request.hostPort,
    protocol: (request.protocol ?? "tcp") as Protocol,
  };
  // The row first: a port corral forwards already is named with its VM, not as "in use".
  const forward = context.store.portForwards.create({
    ...wanted,
    vmId,
    nicId: null,
    guestPort: request.guestPort,
  });
  try {
    await requireFreePort(wanted);
    const machine = runningMachine(context, vmId);
    if (machine) {
      await machine.forwardPort(wanted.hostPort, request.guestPort, {
        protocol: wanted.protocol,
        hostAddress: wanted.hostAddress,
      });
    }
  } catch (error) {
    context.store.portForwards.remove(forward.id);
    throw error;
  }
  return userForwardView(forward);
}

/** Stops the user-mode forward `forward`: its hostfwd rule, if the VM runs, then its row. */
export async function removeUserForward(
  context: UserForwardContext,
  forward: PortForward,
): Promise<PortForwardViewType> {
  const machine = runningMachine(context, forward.vmId);
  if (machine) {
    await machine.unforwardPort(forward.hostPort, {
      protocol: forward.protocol,
      hostAddress: forward.hostAddress,
    });
  }
  context.store.portForwards.remove(forward.id);
  return userForwardView(forward);
}

/**
 * The Machine options that give VM `vmId` its user-mode forwards at start: `-netdev user`'s
 * `hostfwd=` options in QEMU_NET_OPTS (none when it has none).
 */
export function userForwardOptions(store: Store, vmId: string): { env?: Record<string, string> } {
  const rules = store.portForwards
    .list({ vmId })
    .filter((forward) => forward.nicId === null)
    .map(
      (forward) =>
        `hostfwd=${forward.protocol}:${forward.hostAddress}:${forward.hostPort}-:${forward.guestPort}`,
    );
  return rules.length > 0 ? { env: { QEMU_NET_OPTS: rules.join(",") } } : {};
}

/**
 * Once the guest's shell answers, a VM of corral's image with user-mode forwards waits (up to
 * 120 s) until its user-mode NIC has its address: udev may set it up seconds after the shell,
 * and a VM that runs should answer on its forwarded ports. Others are left to themselves.
 */
export async function settleUserForwards(
  store: Store,
  vm: Pick<Vm, "id">,
  machine: Machine,
): Promise<void> {
  if (!store.portForwards.list({ vmId: vm.id }).some((forward) => forward.nicId === null)) return;
  const hasNetworkSetup = (await machine.execute(`[[ -x ${NETWORK_SETUP} ]]`)).exitCode === 0;
  if (!hasNetworkSetup) return;
  await machine.waitUntilSucceeds(`ip -4 -o address show | grep -q ' ${USER_NET_GUEST_ADDRESS}/'`, {
    timeout: USER_NIC_TIMEOUT_MS,
  });
}

/** A user-mode forward as the API shows it: QEMU counts no connections. */
export function userForwardView({ nicId: _, ...forward }: PortForward): PortForwardViewType {
  return { ...forward, mode: "user", connections: null };
}

/**
 * The VM's Machine while its QEMU runs (booting or paused too): its command line was made
 * already, so a new rule must go through its monitor.
 */
function runningMachine(context: UserForwardContext, vmId: string): Machine | undefined {
  const machine = context.machineOf(vmId);
  return machine && ["starting", "running", "paused"].includes(machine.state) ? machine : undefined;
}

/** Throws unless the host lets a socket bind `port` (as QEMU will). */
async function requireFreePort(port: HostPort): Promise<void> {
  const outcome = await probePort({
    address: port.hostAddress,
    port: port.hostPort,
    protocol: port.protocol,
  });
  if (outcome === "in-use") {
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `${describeHostPort(port)} is taken on the host: something else listens there; choose another host port`,
    );
  }
  if (outcome === "not-local") {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `host address ${port.hostAddress} is not an address of this host; leave it out for all of them`,
    );
  }
}
