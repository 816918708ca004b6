// A managed VM's NICs on bridged networks through its life: which networks it gets (its request,
// its template, else the default network where there are networks), their TAPs for its Machine,
// the guest's side once it runs (its own MACs after a restore, a DHCP lease each), and letting go
// of them when it is deleted.

import { CorralError } from "../errors.ts";
import type { Machine, TapAttachment } from "../machine/machine.ts";
import { DEFAULT_NETWORK } from "../network/default-network.ts";
import type { Vm } from "../store/vm-types.ts";
import type { NetworkService } from "./networks.ts";
import type { VmContext } from "./vm-context.ts";
import { hasBackdoorShell, type ManagedSpec } from "./vm-spec.ts";

/** corral's images (debian-12 and those made from it) set their NICs up with it. */
const NIC_SETUP = "/usr/local/lib/corral/nic-setup";
/** How long a guest's NICs may take to lease their addresses once its shell answers. */
const LEASE_TIMEOUT_S = 120;

/**
 * The networks of a new VM: `requested` (its request's or template's), else the default network
 * where the daemon has networks, else none. Throws CORRAL_NETWORK_UNAVAILABLE when networks are
 * named and the daemon has none, CORRAL_NOT_FOUND for a network that does not exist.
 */
export function chooseNetworks(
  context: VmContext,
  requested: readonly string[] | undefined,
): string[] {
  const names = requested ?? (context.networks instanceof Error ? [] : [DEFAULT_NETWORK]);
  if (names.length === 0) return [];
  requireNetworks(context);
  for (const name of names) context.store.networks.get(name);
  return [...names];
}

/** Gives VM `vmId` a NIC on each of `networks` (see NetworkService.attachVm). */
export async function attachNics(
  context: VmContext,
  vmId: string,
  networks: readonly string[],
): Promise<void> {
  if (networks.length > 0) await requireNetworks(context).attachVm(vmId, networks);
}

/**
 * Takes VM `vm` off its networks (NetworkService.detachVm), before its row goes. Without networks
 * its NICs go with its row, and their TAPs with the next daemon start that has networks.
 */
export async function detachNics(context: VmContext, vm: Vm): Promise<void> {
  if (!(context.networks instanceof Error)) await context.networks.detachVm(vm.id);
}

/**
 * The `taps` of VM `vm`'s Machine, its TAPs made again if missing. A guest restored from a
 * snapshot (`isRestore`) still speaks with its snapshot's MACs: its TAPs stay down until
 * settleNics has given it its own, so that its first packets do not pass for the other VM's.
 */
export async function tapOptions(
  context: VmContext,
  vm: Vm,
  isRestore: boolean,
): Promise<{ taps?: TapAttachment[] }> {
  if (context.store.nics.listByVm(vm.id).length === 0) return {};
  const isUp = !(isRestore && hasBackdoorShell(vm.spec as unknown as ManagedSpec));
  const plans = await requireNetworks(context).prepareVm(vm.id, { isUp });
  return { taps: plans.map((plan) => ({ ifname: plan.tap, mac: plan.mac })) };
}

/**
 * Once the guest's shell answers: a restored guest gets its NICs' own MACs (and restarts their
 * DHCP clients) before its TAPs come up; then every NIC's lease is waited for, so that a VM that
 * runs is reachable at its addresses. A guest without the backdoor shell, or an image without
 * corral's nic-setup, is left to its own DHCP client.
 */
export async function settleNics(
  context: VmContext,
  vm: Vm,
  machine: Machine,
  isRestore: boolean,
): Promise<void> {
  const nics = context.store.nics.listByVm(vm.id);
  if (nics.length === 0 || context.networks instanceof Error) return;
  const networks = context.networks;
  if (!hasBackdoorShell(vm.spec as unknown as ManagedSpec)) return;
  const hasNicSetup = (await machine.execute(`[[ -x ${NIC_SETUP} ]]`)).exitCode === 0;
  if (isRestore) {
    if (hasNicSetup) {
      await machine.succeed(`${NIC_SETUP} mac ${nics.map((nic) => nic.mac).join(" ")}`, {
        timeout: 60_000,
      });
    }
    await networks.setLinksUp(vm.id, true);
  }
  if (!hasNicSetup) return;
  await machine.succeed(
    `${NIC_SETUP} wait ${LEASE_TIMEOUT_S} ${nics.map((nic) => nic.address).join(" ")}`,
    { timeout: (LEASE_TIMEOUT_S + 30) * 1000 },
  );
}

function requireNetworks(context: VmContext): NetworkService {
  if (context.networks instanceof CorralError) throw context.networks;
  return context.networks;
}
