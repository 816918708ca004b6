// A NIC's TAP device: persistent (it outlives the QEMU that opens it, and corral), a port of its
// network's bridge in hairpin mode, up, marked with its VM and index. QEMU opens it with
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
  await setHairpin(spec.name, scope);
}

/**
 * Lets the bridge send a frame back out of the port it came in on, so that a VM reaches its own
 * forwarded port through the host. Where `br_netfilter` is loaded (Docker loads it, and
 * `bridge-nf-call-iptables` is then on in every namespace), the DNAT of a packet from a VM to a
 * forward of its own happens on the bridge, which would otherwise drop the frame it must send
 * back to the same port. Flooded frames come back to their sender too, which Linux's IPv6
 * duplicate address detection recognises by its nonce (RFC 7527).
 */
export async function setHairpin(port: string, scope: NetScope = {}): Promise<void> {
  await runScoped(scope, "ip", [
    "link",
    "set",
    "dev",
    port,
    "type",
    "bridge_slave",
    "hairpin",
    "on",
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
