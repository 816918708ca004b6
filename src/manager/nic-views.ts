// What the manager hands out about a VM's NICs: what QEMU needs to open each one, and each one's
// traffic as the guest sees it.

import { guestView, type LinkStats, sumStats } from "../host/link-stats.ts";
import { parseCidr } from "../network/cidr.ts";
import type { Network } from "../store/networks.ts";
import type { Nic } from "../store/nics.ts";

/**
 * One NIC of a VM, for its VMM: `-netdev tap,id=n<index>,ifname=<tap>,script=no,downscript=no
 * -device virtio-net-pci,netdev=n<index>,mac=<mac>`. The guest gets `address` by DHCP.
 */
export interface NicPlan {
  /** Its place among the VM's NICs, from 0. */
  index: number;
  network: string;
  tap: string;
  mac: string;
  address: string;
  /** The network's gateway (router and DNS server) and prefix length. */
  gateway: string;
  prefix: number;
}

/** A NIC's traffic as its guest sees it: rx is what the guest received. */
export interface NicStats extends LinkStats {
  index: number;
  network: string;
  tap: string;
  mac: string;
  address: string;
}

export function nicPlan(nic: Nic, network: Network): NicPlan {
  return {
    index: nic.index,
    network: network.name,
    tap: nic.tap,
    mac: nic.mac,
    address: nic.address,
    gateway: network.gateway,
    prefix: parseCidr(network.subnet).prefix,
  };
}

/** The NIC's counters from its TAP's (`tapStats`; all zero when the TAP is gone). */
export function nicStats(nic: Nic, tapStats: LinkStats | undefined): NicStats {
  const stats = tapStats ? guestView(tapStats) : sumStats([]);
  return {
    index: nic.index,
    network: nic.network,
    tap: nic.tap,
    mac: nic.mac,
    address: nic.address,
    ...stats,
  };
}
