// A VM's port forwards, whatever carries them: nftables DNAT to its NIC on a bridged network
// where the daemon has networks (NetworkService), else a hostfwd rule of its user-mode NIC
// (user-forwards.ts). A forward keeps the kind it was made with; both share one table, so two
// never take the same host port.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { Machine } from "../machine/machine.ts";
import type { Protocol } from "../network/port-forward.ts";
import type { Store } from "../store/store.ts";
import type { CreatePortForwardRequest, PortForwardViewType } from "./network-schemas.ts";
import type { NetworkService } from "./networks.ts";
import { addUserForward, removeUserForward, userForwardView } from "./user-forwards.ts";

export interface PortForwardServiceOptions {
  store: Store;
  /** The bridged networks, or why there are none (then forwards are user-mode). */
  networks: NetworkService | CorralError;
  /** The Machine of a VM that runs under this daemon. */
  machineOf(vmId: string): Machine | undefined;
}

export class PortForwardService {
  readonly #options: PortForwardServiceOptions;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: PortForwardServiceOptions) {
    this.#options = options;
  }

  /** `bridged` where the daemon has networks, else `user` (QEMU's hostfwd). */
  get mode(): "bridged" | "user" {
    return this.#options.networks instanceof Error ? "user" : "bridged";
  }

  /**
   * Forwards a host port to VM `vmId` (see NetworkService.addPortForward for bridged networks).
   * Without networks, to its user-mode NIC: at once if it runs, and at each start. Throws
   * CORRAL_CONFLICT when corral forwards that port already or anything on the host has it.
   */
  add(vmId: string, request: CreatePortForwardRequest): Promise<PortForwardViewType> {
    const { networks } = this.#options;
    if (!(networks instanceof Error)) return networks.addPortForward(vmId, request);
    return this.#serial(() => addUserForward(this.#context(), vmId, request));
  }

  /**
   * Stops forwarding VM `vmId`'s `hostPort` (`protocol`, default tcp). Throws CORRAL_NOT_FOUND
   * when it has no such forward, CORRAL_NETWORK_UNAVAILABLE for a bridged one while the daemon
   * has no networks.
   */
  remove(vmId: string, hostPort: number, protocol: Protocol = "tcp"): Promise<PortForwardViewType> {
    return this.#serial(async () => {
      const { store, networks } = this.#options;
      const forward = store.portForwards
        .list({ vmId, hostPort })
        .find((f) => f.protocol === protocol);
      if (!forward) {
        throw new CorralError(
          ErrorCodes.NOT_FOUND,
          `VM "${store.vms.get(vmId).name}" has no forward of ${protocol} port ${hostPort}`,
        );
      }
      if (forward.nicId === null) return removeUserForward(this.#context(), forward);
      if (networks instanceof Error) throw networks;
      return networks.removePortForward(vmId, hostPort, protocol);
    });
  }

  /** The forwards of VM `vmId` (all when not given), oldest first. */
  async list(vmId?: string): Promise<PortForwardViewType[]> {
    const { store, networks } = this.#options;
    const rows = store.portForwards.list({ vmId });
    const user = rows.filter((forward) => forward.nicId === null).map(userForwardView);
    // A daemon without networks still shows the bridged ones it keeps, uncounted.
    const bridged =
      networks instanceof Error
        ? rows
            .filter((forward) => forward.nicId !== null)
            .map(({ nicId: _, ...forward }) => ({
              ...forward,
              mode: "bridged" as const,
              connections: null,
            }))
        : await networks.listPortForwards(vmId);
    // Ids are ULIDs: they sort by creation.
    return [...bridged, ...user].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  #context() {
    return { store: this.#options.store, machineOf: this.#options.machineOf };
  }

  /** User-mode changes one at a time: a port's check and its rule stay together. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work);
    this.#queue = result.catch(() => {});
    return result;
  }
}
