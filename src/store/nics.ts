// The nics table: a VM's network interfaces — which network, its MAC, its address and its TAP.
// Addresses and MACs are allocated in the transaction that records them, so two VMs created at
// once never get the same; they stay the VM's until it is deleted (its rows go with it).

import { CorralError, ErrorCodes } from "../errors.ts";
import { allocateAddress } from "../network/ipam.ts";
import { MAX_NICS, tapName } from "../network/link-names.ts";
import { allocateMac } from "../network/mac.ts";
import { invalid, now } from "./columns.ts";
import type { Database } from "./database.ts";
import { newId } from "./ids.ts";
import { type NetworkRepository, takenMacs } from "./networks.ts";
import { uniqueConflict } from "./sqlite-errors.ts";

export interface Nic {
  id: string;
  vmId: string;
  /** The VM's name. */
  vm: string;
  /** Its place among the VM's NICs, from 0: the guest sees them in this order. */
  index: number;
  networkId: string;
  /** The network's name. */
  network: string;
  mac: string;
  address: string;
  /** Its TAP device's name. */
  tap: string;
  createdAt: string;
}

interface NicRow {
  id: string;
  vm_id: string;
  vm: string;
  idx: number;
  network_id: string;
  network: string;
  mac: string;
  address: string;
  tap: string;
  created_at: string;
}

const SELECT = `SELECT nics.*, networks.name AS network, vms.name AS vm FROM nics
  JOIN networks ON networks.id = nics.network_id JOIN vms ON vms.id = nics.vm_id`;

export class NicRepository {
  readonly #db: Database;
  readonly #networks: NetworkRepository;

  constructor(db: Database, networks: NetworkRepository) {
    this.#db = db;
    this.#networks = networks;
  }

  /**
   * Gives VM `vmId` one new NIC on each of `networks` (ids or names), in order, after the NICs it
   * has: each the lowest free address of its network's range and a new unique MAC, in one
   * transaction. Throws CORRAL_NOT_FOUND for an unknown VM or network, CORRAL_CONFLICT when a
   * network is full, CORRAL_INVALID_ARGUMENT past MAX_NICS NICs.
   */
  allocate(vmId: string, networks: readonly string[]): Nic[] {
    return this.#db.transaction(() => {
      if (!this.#db.prepare("SELECT 1 FROM vms WHERE id = ?").get(vmId)) {
        throw new CorralError(ErrorCodes.NOT_FOUND, `no VM with id "${vmId}"`);
      }
      const first = this.listByVm(vmId).length;
      if (first + networks.length > MAX_NICS) {
        throw invalid("networks", networks, `would give the VM more than ${MAX_NICS} NICs`);
      }
      const macs = takenMacs(this.#db);
      const ids = networks.map((idOrName, offset) => {
        const network = this.#networks.get(idOrName);
        const taken = (
          this.#db.prepare("SELECT address FROM nics WHERE network_id = ?").all(network.id) as {
            address: string;
          }[]
        ).map((row) => row.address);
        const index = first + offset;
        const nic = {
          id: newId(),
          address: allocateAddress(network, taken, network.name),
          mac: allocateMac(macs),
          tap: tapName(vmId, index),
        };
        macs.add(nic.mac);
        try {
          this.#db
            .prepare(
              `INSERT INTO nics (id, vm_id, idx, network_id, mac, address, tap, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(nic.id, vmId, index, network.id, nic.mac, nic.address, nic.tap, now());
        } catch (error) {
          throw uniqueConflict(error, {
            "nics.tap": `the TAP name ${nic.tap} is another VM's (their ids end alike): create the VM again`,
          });
        }
        return nic.id;
      });
      return ids.map((id) => this.get(id));
    });
  }

  /** The NIC with this id; throws CORRAL_NOT_FOUND when there is none. */
  get(id: string): Nic {
    const row = this.#db.prepare(`${SELECT} WHERE nics.id = ?`).get(id) as NicRow | undefined;
    if (!row) throw new CorralError(ErrorCodes.NOT_FOUND, `no NIC with id "${id}"`);
    return toNic(row);
  }

  /** The VM's NICs in index order. */
  listByVm(vmId: string): Nic[] {
    const rows = this.#db
      .prepare(`${SELECT} WHERE nics.vm_id = ? ORDER BY nics.idx`)
      .all(vmId) as unknown as NicRow[];
    return rows.map(toNic);
  }

  /** Every NIC, or those on network `networkId`, by VM and index. */
  list(filter: { networkId?: string } = {}): Nic[] {
    const rows = (filter.networkId === undefined
      ? this.#db.prepare(`${SELECT} ORDER BY nics.vm_id, nics.idx`).all()
      : this.#db
          .prepare(`${SELECT} WHERE nics.network_id = ? ORDER BY nics.vm_id, nics.idx`)
          .all(filter.networkId)) as unknown as NicRow[];
    return rows.map(toNic);
  }

  /** Deletes the NIC (and its port forwards) and returns it; throws CORRAL_NOT_FOUND when gone. */
  remove(id: string): Nic {
    return this.#db.transaction(() => {
      const nic = this.get(id);
      this.#db.prepare("DELETE FROM nics WHERE id = ?").run(id);
      return nic;
    });
  }

  /** Deletes the VM's NICs (and so their port forwards); returns them as they were. */
  removeByVm(vmId: string): Nic[] {
    return this.#db.transaction(() => {
      const nics = this.listByVm(vmId);
      this.#db.prepare("DELETE FROM nics WHERE vm_id = ?").run(vmId);
      return nics;
    });
  }
}

function toNic(row: NicRow): Nic {
  return {
    id: row.id,
    vmId: row.vm_id,
    vm: row.vm,
    index: row.idx,
    networkId: row.network_id,
    network: row.network,
    mac: row.mac,
    address: row.address,
    tap: row.tap,
    createdAt: row.created_at,
  };
}
