// The network links of a namespace as `ip -j -d link` shows them, which of them are corral's (a
// "crl-" name and a corral alias, both), and deleting one.

import { CorralError } from "../errors.ts";
import { isCorralLinkName, type LinkOwner, parseLinkAlias } from "../network/link-names.ts";
import { ipJson, type NetScope, runScoped } from "./net-scope.ts";

export interface LinkInfo {
  name: string;
  /** "bridge", "tun", "veth"…; undefined for a plain device. */
  kind: string | undefined;
  alias: string | undefined;
  /** What corral made it for; undefined when it is not corral's. */
  owner: LinkOwner | undefined;
  /** The bridge it is a port of. */
  master: string | undefined;
  /** Administratively up. */
  isUp: boolean;
  mac: string;
}

interface IpLink {
  ifname: string;
  flags?: string[];
  master?: string;
  address?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

/** Every link of the namespace. */
export async function listLinks(scope: NetScope = {}): Promise<LinkInfo[]> {
  const links = await ipJson<IpLink>(scope, ["-d", "link", "show"]);
  return links.map((link) => ({
    name: link.ifname,
    kind: link.linkinfo?.info_kind,
    alias: link.ifalias,
    owner: isCorralLinkName(link.ifname) ? parseLinkAlias(link.ifalias) : undefined,
    master: link.master,
    isUp: link.flags?.includes("UP") ?? false,
    mac: link.address ?? "",
  }));
}

/** The links corral made: a corral name and a corral alias. */
export async function listCorralLinks(scope: NetScope = {}): Promise<LinkInfo[]> {
  return (await listLinks(scope)).filter((link) => link.owner !== undefined);
}

/** The link named `name`, if there is one. */
export async function findLink(name: string, scope: NetScope = {}): Promise<LinkInfo | undefined> {
  return (await listLinks(scope)).find((link) => link.name === name);
}

/** Deletes the link `name`; false when there was none. Other failures throw. */
export async function deleteLink(name: string, scope: NetScope = {}): Promise<boolean> {
  try {
    await runScoped(scope, "ip", ["link", "delete", "dev", name]);
    return true;
  } catch (error) {
    if (error instanceof CorralError && /Cannot find device/.test(error.message)) return false;
    throw error;
  }
}
