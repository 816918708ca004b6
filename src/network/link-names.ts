// Names and ownership marks of the links corral creates. Every name starts with "crl-" and fits
// Linux's 15 characters (IFNAMSIZ 16 with its NUL); every link also carries an alias (ifalias)
// saying what it is for, and reconcile and cleanup only ever remove links with both.
//
//   bridge of network N   crl-br-N                 (N up to 8 characters)
//                         crl-br-NNN-hhhh          (longer N: its first 3 and a 4-character hash)
//   TAP of NIC i of VM V  crl-vvvvvvvv-i           (the last 8 characters of V's ULID, lower case)

/** What every corral link name starts with. */
export const LINK_PREFIX = "crl-";
const BRIDGE_PREFIX = `${LINK_PREFIX}br-`;
/** Linux's longest interface name. */
export const MAX_LINK_NAME = 15;
/** How many NICs a VM may have (the index is 0–15). */
export const MAX_NICS = 16;

const ALIAS_PREFIX = "corral:";

/** The bridge of network `network` (a DNS label). */
export function bridgeName(network: string): string {
  const whole = BRIDGE_PREFIX + network;
  if (whole.length <= MAX_LINK_NAME) return whole;
  return `${BRIDGE_PREFIX}${network.slice(0, 3)}-${shortHash(network)}`;
}

/** The TAP of NIC `index` of the VM with ULID `vmId`. */
export function tapName(vmId: string, index: number): string {
  return `${LINK_PREFIX}${vmId.slice(-8).toLowerCase()}-${index}`;
}

/** Whether a link name is of corral's form (a bridge's or a TAP's). */
export function isCorralLinkName(name: string): boolean {
  return name.startsWith(LINK_PREFIX) && name.length <= MAX_LINK_NAME;
}

/** What a corral link is for, as its alias says. */
export type LinkOwner =
  | { kind: "bridge"; network: string }
  | { kind: "tap"; vmId: string; index: number };

/** The alias (ifalias) that marks a link as corral's. */
export function linkAlias(owner: LinkOwner): string {
  return owner.kind === "bridge"
    ? `${ALIAS_PREFIX}network:${owner.network}`
    : `${ALIAS_PREFIX}nic:${owner.vmId}:${owner.index}`;
}

/** What the alias says the link is for; undefined when it is not one of corral's aliases. */
export function parseLinkAlias(alias: string | undefined): LinkOwner | undefined {
  const bridge = /^corral:network:([a-z0-9-]{1,63})$/.exec(alias ?? "");
  if (bridge?.[1]) return { kind: "bridge", network: bridge[1] };
  const tap = /^corral:nic:([0-9A-Z]{26}):(\d{1,2})$/.exec(alias ?? "");
  if (tap?.[1] && tap[2]) return { kind: "tap", vmId: tap[1], index: Number(tap[2]) };
  return undefined;
}

/** Four base-36 characters of FNV-1a of `text`. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (const char of text) {
    hash ^= char.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return (hash % 36 ** 4).toString(36).padStart(4, "0");
}
