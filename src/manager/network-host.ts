// Makes the host match the store: a network is its bridge, its dnsmasq and its part of corral's
// nftables table; a NIC is its TAP on that bridge. Every step is idempotent, so the same calls
// serve a create, a repair at start (reconcile) and a retry. Removing only ever touches links,
// processes and the table that are corral's by name and mark.

import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { deleteBridge, ensureBridge } from "../host/bridge.ts";
import { ensureDnsmasq, stopDnsmasq } from "../host/dnsmasq.ts";
import { deleteLink, type LinkInfo, listCorralLinks } from "../host/links.ts";
import { type NetScope, setSysctl } from "../host/net-scope.ts";
import { applyRuleset, deleteCorralTable, hasCorralTable, readCounters } from "../host/nftables.ts";
import { ensureTap } from "../host/tap.ts";
import { parseCidr } from "../network/cidr.ts";
import { renderRuleset } from "../network/nft-ruleset.ts";
import type { Network } from "../store/networks.ts";
import type { Nic } from "../store/nics.ts";
import type { Store } from "../store/store.ts";

/** What a reconcile did to the host. */
export interface ReconcileReport {
  /** Links and dnsmasq instances of the store's networks and NICs it (re)made or repaired. */
  ensured: string[];
  /** corral's links and dnsmasq instances that the store no longer knows, which it removed. */
  removed: string[];
}

export class NetworkHost {
  readonly scope: NetScope;
  /** One folder per network for its dnsmasq. */
  readonly runDir: string;
  readonly #store: Store;
  #isForwarding = false;

  constructor(store: Store, runDir: string, scope: NetScope) {
    this.#store = store;
    this.runDir = runDir;
    this.scope = scope;
  }

  /** The bridge (gateway address, up) and dnsmasq (with its VMs' leases and names) of `network`. */
  async ensureNetwork(network: Network): Promise<void> {
    await ensureBridge(
      {
        name: network.bridge,
        network: network.name,
        gateway: network.gateway,
        prefix: parseCidr(network.subnet).prefix,
        mac: network.bridgeMac,
      },
      this.scope,
    );
    await this.refreshDnsmasq(network);
  }

  /** Rewrites the network's leases and names from the store; dnsmasq re-reads them (SIGHUP). */
  async refreshDnsmasq(network: Network): Promise<void> {
    const hosts = this.#store.nics
      .list({ networkId: network.id })
      .map((nic) => ({ mac: nic.mac, address: nic.address, name: nic.vm }));
    await ensureDnsmasq(
      {
        network: network.name,
        bridge: network.bridge,
        gateway: network.gateway,
        subnet: network.subnet,
        dir: join(this.runDir, network.name),
        forwardDns: network.nat,
      },
      hosts,
      this.scope,
    );
  }

  /** Stops the network's dnsmasq and deletes its bridge. */
  async removeNetwork(network: Pick<Network, "name" | "bridge">): Promise<void> {
    await stopDnsmasq(join(this.runDir, network.name));
    await deleteBridge(network.bridge, this.scope);
  }

  /** The NIC's TAP, on its network's bridge; up unless `isUp` is false. */
  async ensureNic(nic: Nic, network: Network, isUp = true): Promise<void> {
    await ensureTap(
      { name: nic.tap, bridge: network.bridge, vmId: nic.vmId, index: nic.index, isUp },
      this.scope,
    );
  }

  /**
   * Replaces corral's nftables table with the one the store's networks and forwards call for,
   * keeping the counters' values. Turns IPv4 forwarding on first (NAT and port forwards route).
   */
  async applyFirewall(): Promise<void> {
    if (!this.#isForwarding) {
      await setSysctl(this.scope, "net.ipv4.ip_forward", "1");
      this.#isForwarding = true;
    }
    const counters = await readCounters(this.scope);
    const networks = this.#store.networks.list();
    // Forwards of the user-mode NIC (made while the daemon had no networks) are QEMU's.
    const forwards = this.#store.portForwards.list().filter((forward) => forward.nicId !== null);
    await applyRuleset(renderRuleset({ networks, forwards, counters }), this.scope);
  }

  /**
   * Makes the host match the store: every network's bridge and dnsmasq, every NIC's TAP, the
   * table; then removes corral's links and dnsmasq instances the store does not know.
   */
  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { ensured: [], removed: [] };
    const networks = this.#store.networks.list();
    for (const network of networks) {
      await this.ensureNetwork(network);
      report.ensured.push(network.bridge);
    }
    const nics = this.#store.nics.list();
    const byId = new Map(networks.map((network) => [network.id, network]));
    for (const nic of nics) {
      const network = byId.get(nic.networkId);
      if (!network) continue;
      await this.ensureNic(nic, network);
      report.ensured.push(nic.tap);
    }
    const known = new Set([...networks.map((n) => n.bridge), ...nics.map((nic) => nic.tap)]);
    const links = await listCorralLinks(this.scope);
    report.removed.push(
      ...(await removeLinks(
        links.filter((link) => !known.has(link.name)),
        this.scope,
      )),
    );
    const names = new Set(networks.map((network) => network.name));
    for (const folder of await dnsmasqFolders(this.runDir)) {
      if (names.has(folder)) continue;
      await stopDnsmasq(join(this.runDir, folder));
      report.removed.push(`dnsmasq of ${folder}`);
    }
    await this.applyFirewall();
    return report;
  }

  /** Removes everything corral made on the host (see cleanupNetworkHost). */
  cleanup(): Promise<string[]> {
    return cleanupNetworkHost(this.runDir, this.scope);
  }
}

/**
 * Removes everything corral made for networks in `scope`: the dnsmasq instances of `runDir`'s
 * folders, its links (TAPs, then bridges), its nftables table. Returns what it removed.
 */
export async function cleanupNetworkHost(runDir: string, scope: NetScope): Promise<string[]> {
  const removed: string[] = [];
  for (const folder of await dnsmasqFolders(runDir)) {
    await stopDnsmasq(join(runDir, folder));
    removed.push(`dnsmasq of ${folder}`);
  }
  removed.push(...(await removeLinks(await listCorralLinks(scope), scope)));
  if (await hasCorralTable(scope)) {
    await deleteCorralTable(scope);
    removed.push("nftables table inet corral");
  }
  return removed;
}

/** Deletes `links`, TAPs before bridges (deleting a bridge would only let its TAPs go). */
async function removeLinks(links: readonly LinkInfo[], scope: NetScope): Promise<string[]> {
  const ordered = [
    ...links.filter((link) => link.owner?.kind === "tap"),
    ...links.filter((link) => link.owner?.kind === "bridge"),
  ];
  for (const link of ordered) await deleteLink(link.name, scope);
  return ordered.map((link) => link.name);
}

/** The network folders of the run folder (each a network's dnsmasq). */
async function dnsmasqFolders(runDir: string): Promise<string[]> {
  const entries = await readdir(runDir, { withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
}
