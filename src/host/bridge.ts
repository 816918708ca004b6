// A network's Linux bridge: created (or put right) with its gateway address, its alias and a fixed
// MAC, up, with route_localnet on so that 127.0.0.1 can reach port forwards through it.

import { linkAlias } from "../network/link-names.ts";
import { deleteLink, findLink, type LinkInfo, listCorralLinks } from "./links.ts";
import { ipJson, type NetScope, runScoped, setSysctl } from "./net-scope.ts";

export interface BridgeSpec {
  name: string;
  /** The network it is the bridge of (its alias says so). */
  network: string;
  /** The host's address on it. */
  gateway: string;
  /** The subnet's prefix length. */
  prefix: number;
  /** Its MAC, kept whatever ports come and go (else a bridge takes its lowest port's). */
  mac: string;
}

interface IpAddress {
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/**
 * Makes the bridge as `spec` says: creates it if missing, sets its alias, replaces any other IPv4
 * address with the gateway's, and brings it up. Idempotent. Throws CORRAL_HOST_COMMAND_FAILED.
 */
export async function ensureBridge(spec: BridgeSpec, scope: NetScope = {}): Promise<void> {
  const existing = await findLink(spec.name, scope);
  if (!existing) {
    await runScoped(scope, "ip", [
      "link",
      "add",
      "name",
      spec.name,
      "address",
      spec.mac,
      "type",
      "bridge",
    ]);
  }
  const alias = linkAlias({ kind: "bridge", network: spec.network });
  await runScoped(scope, "ip", ["link", "set", "dev", spec.name, "alias", alias]);
  const wanted = `${spec.gateway}/${spec.prefix}`;
  const [info] = await ipJson<IpAddress>(scope, ["-4", "address", "show", "dev", spec.name]);
  const addresses = (info?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
  for (const address of addresses.filter((a) => a !== wanted)) {
    await runScoped(scope, "ip", ["address", "delete", address, "dev", spec.name]);
  }
  if (!addresses.includes(wanted)) {
    await runScoped(scope, "ip", ["address", "add", wanted, "dev", spec.name]);
  }
  await runScoped(scope, "ip", ["link", "set", "dev", spec.name, "up"]);
  // Lets the output hook's DNAT of 127.0.0.1 leave through this bridge (a martian otherwise).
  await setSysctl(scope, `net.ipv4.conf.${spec.name}.route_localnet`, "1");
}

/** Deletes the bridge (its ports are let go, not deleted); false when there was none. */
export function deleteBridge(name: string, scope: NetScope = {}): Promise<boolean> {
  return deleteLink(name, scope);
}

/** corral's bridges. */
export async function listBridges(scope: NetScope = {}): Promise<LinkInfo[]> {
  return (await listCorralLinks(scope)).filter((link) => link.owner?.kind === "bridge");
}
