// A NIC's TAP device: persistent (it outlives the QEMU that opens it, and corral), a port of its
// network's bridge, up, marked with its VM and index. QEMU opens it with
// `-netdev tap,ifname=<name>,script=no,downscript=no`. It is single-queue: the kernel refuses a
// QEMU asking for several queues (`queues=N`) on it, and a multi-queue TAP opened without them.

import { linkAlias } from "../network/link-names.ts";
import { deleteLink, findLink, type LinkInfo, listCorralLinks } from "./links.ts";
import { type NetScope, runScoped } from "./net-scope.ts";

export interface TapSpec {
  name: string;
  /** The bridge it is a port of. */
  bridge: string;
  vmId: string;
  /** The NIC's index among the VM's NICs. */
  index: number;
  /** Up (the default), or down: it carries nothing either way until it is set up. */
  isUp?: boolean;
}

/**
 * Makes the TAP as `spec` says: creates it if missing, puts it on the bridge with its alias, and
 * brings it up (it has no carrier until QEMU opens it) unless `isUp` is false. Idempotent. Throws
 * CORRAL_HOST_COMMAND_FAILED.
 */
export async function ensureTap(spec: TapSpec, scope: NetScope = {}): Promise<void> {
  if (!(await findLink(spec.name, scope))) {
    await runScoped(scope, "ip", ["tuntap", "add", "dev", spec.name, "mode", "tap"]);
  }
  const alias = linkAlias({ kind: "tap", vmId: spec.vmId, index: spec.index });
  await runScoped(scope, "ip", [
    "link",
    "set",
    "dev",
    spec.name,
    "master",
    spec.bridge,
    "alias",
    alias,
    spec.isUp === false ? "down" : "up",
  ]);
}

/** Sets the TAP up or down: a TAP that is down drops what either side sends. */
export async function setTapUp(name: string, isUp: boolean, scope: NetScope = {}): Promise<void> {
  await runScoped(scope, "ip", ["link", "set", "dev", name, isUp ? "up" : "down"]);
}

/** Deletes the TAP; false when there was none. */
export function deleteTap(name: string, scope: NetScope = {}): Promise<boolean> {
  return deleteLink(name, scope);
}

/** corral's TAPs. */
export async function listTaps(scope: NetScope = {}): Promise<LinkInfo[]> {
  return (await listCorralLinks(scope)).filter((link) => link.owner?.kind === "tap");
}
