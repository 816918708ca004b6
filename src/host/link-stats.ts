// Traffic counters of links (bytes, packets, errors, drops each way), read from the kernel with
// `ip -j -s link` — the numbers of /sys/class/net/<link>/statistics, but readable in any network
// namespace and for every link in one call. A TAP's counters are the host's side of the wire:
// what the guest sent is the TAP's rx; guestView swaps them.

import { ipJson, type NetScope } from "./net-scope.ts";

export interface TrafficCounters {
  bytes: number;
  packets: number;
  errors: number;
  dropped: number;
}

export interface LinkStats {
  rx: TrafficCounters;
  tx: TrafficCounters;
}

interface IpLinkStats {
  ifname: string;
  stats64?: { rx: TrafficCounters; tx: TrafficCounters };
}

/** The counters of the links named in `names` (all links when omitted), by name. */
export async function readLinkStats(
  names?: readonly string[],
  scope: NetScope = {},
): Promise<Map<string, LinkStats>> {
  const links = await ipJson<IpLinkStats>(scope, ["-s", "link", "show"]);
  const stats = new Map<string, LinkStats>();
  for (const link of links) {
    if (!link.stats64 || (names && !names.includes(link.ifname))) continue;
    stats.set(link.ifname, { rx: pick(link.stats64.rx), tx: pick(link.stats64.tx) });
  }
  return stats;
}

/** A TAP's counters as its guest sees them: the TAP's rx is what the guest sent (tx). */
export function guestView(tapStats: LinkStats): LinkStats {
  return { rx: tapStats.tx, tx: tapStats.rx };
}

/** The sum of several links' counters. */
export function sumStats(all: Iterable<LinkStats>): LinkStats {
  const total: LinkStats = { rx: zero(), tx: zero() };
  for (const stats of all) {
    for (const direction of ["rx", "tx"] as const) {
      for (const key of ["bytes", "packets", "errors", "dropped"] as const) {
        total[direction][key] += stats[direction][key];
      }
    }
  }
  return total;
}

function pick(counters: TrafficCounters): TrafficCounters {
  const { bytes, packets, errors, dropped } = counters;
  return { bytes, packets, errors, dropped };
}

function zero(): TrafficCounters {
  return { bytes: 0, packets: 0, errors: 0, dropped: 0 };
}
