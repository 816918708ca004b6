// The port_forwards table: host ports forwarded to a VM's NIC on a bridged network, or to its
// user-mode NIC (no NIC row: QEMU's hostfwd). Two forwards never take the same packets (same port
// and protocol, and the same host address or either on every address); a forward goes with its
// VM and its NIC.

import { CorralError, ErrorCodes } from "../errors.ts";
import {
  describeHostPort,
  hostPortsCollide,
  type Protocol,
  requireHostAddress,
  requirePort,
  requireProtocol,
} from "../network/port-forward.ts";
import { now } from "./columns.ts";
import type { Database } from "./database.ts";
import { newId } from "./ids.ts";
import { uniqueConflict } from "./sqlite-errors.ts";

/** The guest's address on QEMU's user-mode network (its DHCP server's first lease). */
export const USER_NET_GUEST_ADDRESS = "10.0.2.15";

export interface PortForward {
  id: string;
  vmId: string;
  /** The VM's name. */
  vm: string;
  /** The NIC on a bridged network it goes to; null: the user-mode NIC (a QEMU hostfwd rule). */
  nicId: string | null;
  /** Where it listens: an address of the host, or 0.0.0.0 for all of them (and 127.0.0.1). */
  hostAddress: string;
  hostPort: number;
  protocol: Protocol;
  /** The NIC's address (USER_NET_GUEST_ADDRESS on the user-mode NIC). */
  guestAddress: string;
  guestPort: number;
  createdAt: string;
}

export interface NewPortForward {
  vmId: string;
  /** null: the user-mode NIC. */
  nicId: string | null;
  hostAddress: string;
  hostPort: number;
  protocol: Protocol;
  guestPort: number;
}

interface PortForwardRow {
  id: string;
  vm_id: string;
  vm: string;
  nic_id: string | null;
  host_address: string;
  host_port: number;
  protocol: Protocol;
  guest_address: string;
  guest_port: number;
  created_at: string;
}

const SELECT = `SELECT port_forwards.*, vms.name AS vm,
    coalesce(nics.address, '${USER_NET_GUEST_ADDRESS}') AS guest_address
  FROM port_forwards JOIN vms ON vms.id = port_forwards.vm_id
  LEFT JOIN nics ON nics.id = port_forwards.nic_id`;

export class PortForwardRepository {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Records a forward. Throws CORRAL_CONFLICT naming the forward (and its VM) that already takes
   * its packets, CORRAL_NOT_FOUND when the NIC is not the VM's (or, for the user-mode NIC, there
   * is no such VM), CORRAL_INVALID_ARGUMENT for a bad port, protocol or address.
   */
  create(input: NewPortForward): PortForward {
    const wanted = {
      hostAddress: requireHostAddress(input.hostAddress),
      hostPort: requirePort(input.hostPort, "host port"),
      protocol: requireProtocol(input.protocol),
    };
    const guestPort = requirePort(input.guestPort, "guest port");
    return this.#db.transaction(() => {
      const owner =
        input.nicId === null
          ? this.#db.prepare("SELECT 1 FROM vms WHERE id = ?").get(input.vmId)
          : this.#db
              .prepare("SELECT 1 FROM nics WHERE id = ? AND vm_id = ?")
              .get(input.nicId, input.vmId);
      if (!owner) {
        throw new CorralError(
          ErrorCodes.NOT_FOUND,
          input.nicId === null
            ? `no VM with id "${input.vmId}"`
            : `VM ${input.vmId} has no NIC with id "${input.nicId}"`,
        );
      }
      const taken = this.list({ hostPort: wanted.hostPort }).find((other) =>
        hostPortsCollide(other, wanted),
      );
      if (taken) throw conflict(wanted, taken);
      const id = newId();
      try {
        this.#db
          .prepare(
            `INSERT INTO port_forwards (id, vm_id, nic_id, host_address, host_port, protocol,
               guest_port, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            id,
            input.vmId,
            input.nicId,
            wanted.hostAddress,
            wanted.hostPort,
            wanted.protocol,
            guestPort,
            now(),
          );
      } catch (error) {
        throw uniqueConflict(error, {
          "port_forwards.host_address, port_forwards.host_port, port_forwards.protocol": `${describeHostPort(wanted)} is already forwarded`,
        });
      }
      return this.get(id);
    });
  }

  /** The forward with this id; throws CORRAL_NOT_FOUND when there is none. */
  get(id: string): PortForward {
    const row = this.#db.prepare(`${SELECT} WHERE port_forwards.id = ?`).get(id) as
      | PortForwardRow
      | undefined;
    if (!row) throw new CorralError(ErrorCodes.NOT_FOUND, `no port forward with id "${id}"`);
    return toPortForward(row);
  }

  /** The forwards (of VM `vmId`, on host port `hostPort`, when given), oldest first. */
  list(filter: { vmId?: string; hostPort?: number } = {}): PortForward[] {
    const conditions: string[] = [];
    const parameters: (string | number)[] = [];
    if (filter.vmId !== undefined) {
      conditions.push("port_forwards.vm_id = ?");
      parameters.push(filter.vmId);
    }
    if (filter.hostPort !== undefined) {
      conditions.push("port_forwards.host_port = ?");
      parameters.push(filter.hostPort);
    }
    const where = conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : "";
    const rows = this.#db
      .prepare(`${SELECT}${where} ORDER BY port_forwards.rowid`)
      .all(...parameters) as unknown as PortForwardRow[];
    return rows.map(toPortForward);
  }

  /** Deletes the forward and returns it; throws CORRAL_NOT_FOUND when it is gone. */
  remove(id: string): PortForward {
    return this.#db.transaction(() => {
      const forward = this.get(id);
      this.#db.prepare("DELETE FROM port_forwards WHERE id = ?").run(id);
      return forward;
    });
  }
}

function conflict(wanted: Parameters<typeof describeHostPort>[0], taken: PortForward): CorralError {
  return new CorralError(
    ErrorCodes.CONFLICT,
    `${describeHostPort(wanted)} is already forwarded (${describeHostPort(taken)} → VM "${taken.vm}" port ${taken.guestPort}): choose another host port or address`,
  );
}

function toPortForward(row: PortForwardRow): PortForward {
  return {
    id: row.id,
    vmId: row.vm_id,
    vm: row.vm,
    nicId: row.nic_id,
    hostAddress: row.host_address,
    hostPort: row.host_port,
    protocol: row.protocol,
    guestAddress: row.guest_address,
    guestPort: row.guest_port,
    createdAt: row.created_at,
  };
}
