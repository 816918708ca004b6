// The manager's bridged networks: create and delete them, give VMs NICs on them (what QEMU needs
// to open each TAP), forward host ports to them, count their traffic, and keep the host in step
// with the store (reconcile at start, cleanup on request). Host changes run one at a time.

import { CorralError, ErrorCodes } from "../errors.ts";
import { guestView, readLinkStats, sumStats } from "../host/link-stats.ts";
import { findListener } from "../host/listeners.ts";
import { requireNetworking } from "../host/net-capability.ts";
import { readCounters } from "../host/nftables.ts";
import { listLocalAddresses, listRoutes } from "../host/routes.ts";
import { deleteTap, setTapUp } from "../host/tap.ts";
import { chooseDefaultSubnet, DEFAULT_NETWORK } from "../network/default-network.ts";
import { overlappingRoute } from "../network/ipam.ts";
import { forwardCounter, networkCounter } from "../network/nft-ruleset.ts";
import {
  ANY_ADDRESS,
  describeHostPort,
  type Protocol,
  requireHostAddress,
} from "../network/port-forward.ts";
import type { Network } from "../store/networks.ts";
import type { Nic } from "../store/nics.ts";
import type { PortForward } from "../store/port-forwards.ts";
import type { Store } from "../store/store.ts";
import { cleanupNetworkHost, NetworkHost, type ReconcileReport } from "./network-host.ts";
import type {
  CreateNetworkRequest,
  CreatePortForwardRequest,
  NetworkViewType,
  PortForwardViewType,
} from "./network-schemas.ts";
import { type NicPlan, type NicStats, nicPlan, nicStats } from "./nic-views.ts";

export type { ReconcileReport } from "./network-host.ts";
export type { NicPlan, NicStats } from "./nic-views.ts";

/** Where networks' dnsmasq folders go by default: under /run, which others may enter. */
export const DEFAULT_NETWORK_RUN_DIR = "/run/corral-networks";

export interface NetworkServiceOptions {
  /** dnsmasq's folders, one per network; every folder above must let others in (o+x). */
  runDir?: string;
  /** Act in this network namespace instead of the host's own: for tests. */
  netns?: string;
  /** Make the default network, `corral0`, when there is none; default true. */
  defaultNetwork?: boolean;
}

export class NetworkService {
  readonly #host: NetworkHost;
  readonly #store: Store;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(store: Store, options: NetworkServiceOptions) {
    this.#store = store;
    this.#host = new NetworkHost(store, options.runDir ?? DEFAULT_NETWORK_RUN_DIR, {
      netns: options.netns,
    });
  }

  /**
   * Checks that networks can be made here, makes the default network if needed and reconciles
   * the host with the store. Throws CORRAL_NETWORK_UNAVAILABLE without root or the programs
   * (callers then give VMs user-mode networking), CORRAL_HOST_COMMAND_FAILED when the host
   * refuses a change.
   */
  static async open(
    store: Store,
    options: NetworkServiceOptions = {},
  ): Promise<{ service: NetworkService; report: ReconcileReport }> {
    requireNetworking("corral's networks");
    const service = new NetworkService(store, options);
    if ((options.defaultNetwork ?? true) && !store.networks.find(DEFAULT_NETWORK)) {
      await service.create({ name: DEFAULT_NETWORK });
    }
    const report = await service.reconcile();
    return { service, report };
  }

  /**
   * Removes everything corral made for networks on this host (or in `options.netns`): dnsmasq
   * instances of `options.runDir`, bridges, TAPs, the nftables table; returns what it removed.
   * A store keeps its networks: the next open makes them again. Throws
   * CORRAL_NETWORK_UNAVAILABLE without root or the programs.
   */
  static cleanupHost(
    options: Pick<NetworkServiceOptions, "runDir" | "netns"> = {},
  ): Promise<string[]> {
    requireNetworking("cleaning up corral's networks");
    return cleanupNetworkHost(options.runDir ?? DEFAULT_NETWORK_RUN_DIR, { netns: options.netns });
  }

  /** The networks with their traffic, oldest first. */
  async list(): Promise<NetworkViewType[]> {
    return this.#views(this.#store.networks.list());
  }

  /** The network with this name or id; throws CORRAL_NOT_FOUND. */
  async get(name: string): Promise<NetworkViewType> {
    const [view] = await this.#views([this.#store.networks.get(name)]);
    return view as NetworkViewType;
  }

  /**
   * Creates a network: its row, bridge, dnsmasq and rules (nothing stays when a step fails).
   * Throws CORRAL_CONFLICT for a taken name, or a subnet that overlaps another network or a route
   * of the host (naming it); CORRAL_INVALID_ARGUMENT for bad addresses.
   */
  create(request: CreateNetworkRequest): Promise<NetworkViewType> {
    return this.#serial(async () => {
      const existing = this.#store.networks.list();
      // Routes of corral's own bridges are networks, which the store checks for overlaps.
      const routes = (await listRoutes(this.#host.scope)).filter(
        (route) => !existing.some((network) => network.bridge === route.device),
      );
      const subnet =
        request.subnet ??
        chooseDefaultSubnet(
          routes,
          existing.map((network) => network.subnet),
        );
      const route = overlappingRoute(subnet, routes);
      if (route) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `subnet ${subnet} overlaps the host's route to ${route.destination}${route.device ? ` on ${route.device}` : ""}: choose another subnet`,
        );
      }
      const network = this.#store.networks.create({
        name: request.name,
        subnet,
        gateway: request.gateway,
        dhcpStart: request.dhcpStart,
        dhcpEnd: request.dhcpEnd,
        nat: request.nat ?? true,
        isolated: request.isolated ?? false,
      });
      try {
        await this.#host.ensureNetwork(network);
        await this.#host.applyFirewall();
      } catch (error) {
        this.#store.networks.remove(network.id);
        await this.#host.removeNetwork(network).catch(() => {});
        await this.#host.applyFirewall().catch(() => {});
        throw error;
      }
      return (await this.#views([network]))[0] as NetworkViewType;
    });
  }

  /**
   * Deletes a network, its bridge, dnsmasq and rules. Throws CORRAL_NOT_FOUND, or CORRAL_CONFLICT
   * naming the VMs with a NIC on it.
   */
  remove(name: string): Promise<NetworkViewType> {
    return this.#serial(async () => {
      const [view] = await this.#views([this.#store.networks.get(name)]);
      const network = this.#store.networks.remove(name);
      await this.#host.removeNetwork(network);
      await this.#host.applyFirewall();
      return view as NetworkViewType;
    });
  }

  /**
   * Gives the VM one NIC on each of `networks` (names; in order, after any it has): an address
   * and a MAC kept for its life, a TAP on the network's bridge, a static lease and its names
   * `<vm>` and `<vm>.<network>` in the network's DNS. Returns what QEMU needs for the new NICs.
   * Throws CORRAL_NOT_FOUND for an unknown VM or network, CORRAL_CONFLICT for a full network.
   */
  attachVm(vmId: string, networks: readonly string[]): Promise<NicPlan[]> {
    return this.#serial(async () => {
      const nics = this.#store.nics.allocate(vmId, networks);
      try {
        for (const nic of nics) await this.#host.ensureNic(nic, this.#networkOf(nic));
        for (const network of this.#networksOf(nics)) await this.#host.refreshDnsmasq(network);
      } catch (error) {
        for (const nic of nics) {
          this.#store.nics.remove(nic.id);
          await deleteTap(nic.tap, this.#host.scope).catch(() => {});
        }
        throw error;
      }
      return nics.map((nic) => nicPlan(nic, this.#networkOf(nic)));
    });
  }

  /**
   * What QEMU needs for each of the VM's NICs, in order, their TAPs made again if missing (a
   * VM's start after the host rebooted). With `isUp: false` the TAPs are down, carrying nothing
   * until setLinksUp: a guest restored from a snapshot speaks with its snapshot's MACs until it
   * is given its own.
   */
  prepareVm(vmId: string, options: { isUp?: boolean } = {}): Promise<NicPlan[]> {
    return this.#serial(async () => {
      const nics = this.#store.nics.listByVm(vmId);
      for (const nic of nics) {
        await this.#host.ensureNic(nic, this.#networkOf(nic), options.isUp ?? true);
      }
      return nics.map((nic) => nicPlan(nic, this.#networkOf(nic)));
    });
  }

  /** Sets the TAPs of the VM's NICs up (or down). */
  setLinksUp(vmId: string, isUp: boolean): Promise<void> {
    return this.#serial(async () => {
      for (const nic of this.#store.nics.listByVm(vmId)) {
        await setTapUp(nic.tap, isUp, this.#host.scope);
      }
    });
  }

  /**
   * Takes the VM off its networks: its port forwards, NICs (their addresses are free again),
   * TAPs, leases and names. Call it before the VM's row is deleted. Does nothing for a VM
   * without NICs.
   */
  detachVm(vmId: string): Promise<void> {
    return this.#serial(async () => {
      const hadForwards = this.#store.portForwards.list({ vmId }).length > 0;
      const nics = this.#store.nics.removeByVm(vmId);
      for (const nic of nics) await deleteTap(nic.tap, this.#host.scope);
      for (const network of this.#networksOf(nics)) await this.#host.refreshDnsmasq(network);
      if (hadForwards) await this.#host.applyFirewall();
    });
  }

  /**
   * Forwards a host port to the VM's NIC on `request.network` (default its first). Throws
   * CORRAL_CONFLICT when a forward of corral or any listener on the host already takes the port
   * (naming it) or the VM has no NIC, CORRAL_INVALID_ARGUMENT for an address the host lacks.
   */
  addPortForward(vmId: string, request: CreatePortForwardRequest): Promise<PortForwardViewType> {
    return this.#serial(async () => {
      const nics = this.#store.nics.listByVm(vmId);
      const nic = request.network ? nics.find((n) => n.network === request.network) : nics[0];
      if (!nic) {
        const vm = this.#store.vms.get(vmId);
        throw new CorralError(
          ErrorCodes.CONFLICT,
          request.network
            ? `VM "${vm.name}" has no NIC on network "${request.network}"`
            : `VM "${vm.name}" has no NIC on a corral network: port forwards need one`,
        );
      }
      const wanted = {
        hostAddress: requireHostAddress(request.hostAddress ?? ANY_ADDRESS),
        hostPort: request.hostPort,
        protocol: (request.protocol ?? "tcp") as Protocol,
      };
      if (wanted.hostAddress !== ANY_ADDRESS) {
        const local = await listLocalAddresses(this.#host.scope);
        if (!local.includes(wanted.hostAddress)) {
          throw new CorralError(
            ErrorCodes.INVALID_ARGUMENT,
            `host address ${wanted.hostAddress} is not an address of this host (it has ${local.join(", ")}); leave it out for all of them`,
          );
        }
      }
      const listener = await findListener(wanted, this.#host.scope);
      if (listener) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `${describeHostPort(wanted)} is taken on the host: something listens on ${listener}; choose another host port`,
        );
      }
      const forward = this.#store.portForwards.create({
        ...wanted,
        vmId,
        nicId: nic.id,
        guestPort: request.guestPort,
      });
      try {
        await this.#host.applyFirewall();
      } catch (error) {
        this.#store.portForwards.remove(forward.id);
        throw error;
      }
      return { ...forward, mode: "bridged" as const, connections: 0 };
    });
  }

  /**
   * Stops forwarding the VM's `hostPort` (`protocol`, default tcp). Throws CORRAL_NOT_FOUND when
   * it has no such forward.
   */
  removePortForward(
    vmId: string,
    hostPort: number,
    protocol: Protocol = "tcp",
  ): Promise<PortForwardViewType> {
    return this.#serial(async () => {
      const forward = this.#store.portForwards
        .list({ vmId, hostPort })
        .find((f) => f.protocol === protocol && f.nicId !== null);
      if (!forward) {
        const vm = this.#store.vms.get(vmId);
        throw new CorralError(
          ErrorCodes.NOT_FOUND,
          `VM "${vm.name}" has no forward of ${protocol} port ${hostPort}`,
        );
      }
      const [view] = await this.#forwardViews([forward]);
      this.#store.portForwards.remove(forward.id);
      await this.#host.applyFirewall();
      return view as PortForwardViewType;
    });
  }

  /**
   * The port forwards to NICs on networks (of the VM `vmId` when given), oldest first, with their
   * connections.
   */
  async listPortForwards(vmId?: string): Promise<PortForwardViewType[]> {
    return this.#forwardViews(
      this.#store.portForwards.list({ vmId }).filter((forward) => forward.nicId !== null),
    );
  }

  /** The traffic of each of the VM's NICs, as the guest sees it. */
  async nicStats(vmId: string): Promise<NicStats[]> {
    const nics = this.#store.nics.listByVm(vmId);
    const stats = await readLinkStats(
      nics.map((nic) => nic.tap),
      this.#host.scope,
    );
    return nics.map((nic) => nicStats(nic, stats.get(nic.tap)));
  }

  /** Makes the host match the store (see NetworkHost.reconcile). */
  reconcile(): Promise<ReconcileReport> {
    return this.#serial(() => this.#host.reconcile());
  }

  /**
   * Removes everything corral made on the host for networks (dnsmasq instances, bridges, TAPs,
   * its nftables table); the store keeps them, and the next reconcile makes them again.
   */
  cleanup(): Promise<string[]> {
    return this.#serial(() => this.#host.cleanup());
  }

  #networkOf(nic: Nic): Network {
    return this.#store.networks.get(nic.networkId);
  }

  #networksOf(nics: readonly Nic[]): Network[] {
    const ids = [...new Set(nics.map((nic) => nic.networkId))];
    return ids.flatMap((id) => this.#store.networks.find(id) ?? []);
  }

  async #views(networks: readonly Network[]): Promise<NetworkViewType[]> {
    const nics = this.#store.nics.list();
    const links = await readLinkStats(undefined, this.#host.scope);
    const counters = await readCounters(this.#host.scope);
    const counter = (name: string) => counters.get(name) ?? { packets: 0, bytes: 0 };
    return networks.map((network) => {
      const own = nics.filter((nic) => nic.networkId === network.id);
      const traffic = sumStats(
        own.flatMap((nic) => {
          const stats = links.get(nic.tap);
          return stats ? [guestView(stats)] : [];
        }),
      );
      const { bridgeMac: _, ...fields } = network;
      return {
        ...fields,
        nics: own.length,
        traffic: {
          ...traffic,
          routed: {
            rx: counter(networkCounter(network.name, "rx")),
            tx: counter(networkCounter(network.name, "tx")),
          },
        },
      };
    });
  }

  async #forwardViews(forwards: readonly PortForward[]): Promise<PortForwardViewType[]> {
    const counters = forwards.length > 0 ? await readCounters(this.#host.scope) : new Map();
    return forwards.map(({ nicId: _, ...forward }) => ({
      ...forward,
      mode: "bridged" as const,
      connections: counters.get(forwardCounter(forward.id))?.packets ?? 0,
    }));
  }

  /** Runs `work` after every change before it: the host sees one change at a time. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work);
    this.#queue = result.catch(() => {});
    return result;
  }
}
