// The networks table: the manager's bridged networks — name, addresses, NAT and isolation, and
// the bridge that carries each. Subnets of two networks never overlap; a network with NICs on it
// cannot be deleted.

import { CorralError, ErrorCodes } from "../errors.ts";
import { cidrsOverlap, parseCidr } from "../network/cidr.ts";
import { planSubnet } from "../network/ipam.ts";
import { bridgeName, MAX_LINK_NAME } from "../network/link-names.ts";
import { allocateMac, normalizeMac } from "../network/mac.ts";
import { invalid, now, requireDnsLabel } from "./columns.ts";
import type { Database } from "./database.ts";
import { idFor } from "./ids.ts";
import { uniqueConflict } from "./sqlite-errors.ts";

export interface Network {
  id: string;
  /** A DNS label, unique: VMs on it are `<vm>.<name>`. */
  name: string;
  /** CIDR block: "10.213.0.0/24". */
  subnet: string;
  /** The host's address on the bridge. */
  gateway: string;
  /** The range NICs' addresses are allocated from (served as static DHCP leases). */
  dhcpStart: string;
  dhcpEnd: string;
  /** VMs reach beyond the host, masqueraded. */
  nat: boolean;
  /** No traffic to other networks, nor to the host beyond DHCP and DNS. */
  isolated: boolean;
  /** Its Linux bridge's name, and that bridge's MAC. */
  bridge: string;
  bridgeMac: string;
  createdAt: string;
}

export interface NewNetwork {
  id?: string;
  name: string;
  subnet: string;
  gateway?: string | undefined;
  dhcpStart?: string | undefined;
  dhcpEnd?: string | undefined;
  nat: boolean;
  isolated: boolean;
  /** Default: bridgeName(name). */
  bridge?: string | undefined;
  /** Default: a new MAC no NIC or bridge has. */
  bridgeMac?: string | undefined;
}

interface NetworkRow {
  id: string;
  name: string;
  subnet: string;
  gateway: string;
  dhcp_start: string;
  dhcp_end: string;
  nat: number;
  isolated: number;
  bridge: string;
  bridge_mac: string;
  created_at: string;
}

export class NetworkRepository {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Adds a network; the gateway and range default as planSubnet says, the bridge's name as
   * bridgeName says. Throws CORRAL_CONFLICT
   * when its name, bridge or bridge MAC is taken or its subnet overlaps another network's (naming
   * it), CORRAL_INVALID_ARGUMENT for a bad field.
   */
  create(input: NewNetwork): Network {
    const id = idFor("network", input.id);
    const name = requireDnsLabel(input.name, "network name");
    const plan = planSubnet(input.subnet, input);
    if (typeof input.nat !== "boolean") throw invalid("nat", input.nat, "must be true or false");
    if (typeof input.isolated !== "boolean") {
      throw invalid("isolated", input.isolated, "must be true or false");
    }
    const bridge = input.bridge ?? bridgeName(name);
    if (!/^[a-z0-9-]{1,15}$/.test(bridge)) {
      throw invalid("bridge", bridge, `must be 1 to ${MAX_LINK_NAME} letters, digits, "-"`);
    }
    return this.#db.transaction(() => {
      if (this.#db.prepare("SELECT 1 FROM networks WHERE name = ?").get(name)) {
        throw new CorralError(ErrorCodes.CONFLICT, `a network named "${name}" already exists`);
      }
      const bridgeMac =
        input.bridgeMac === undefined
          ? allocateMac(takenMacs(this.#db))
          : normalizeMac(input.bridgeMac);
      const cidr = parseCidr(plan.subnet);
      const other = this.list().find((network) => cidrsOverlap(parseCidr(network.subnet), cidr));
      if (other) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `subnet ${plan.subnet} overlaps network "${other.name}" (${other.subnet}): choose another subnet`,
        );
      }
      try {
        this.#db
          .prepare(
            `INSERT INTO networks (id, name, subnet, gateway, dhcp_start, dhcp_end, nat, isolated,
               bridge, bridge_mac, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            id,
            name,
            plan.subnet,
            plan.gateway,
            plan.dhcpStart,
            plan.dhcpEnd,
            input.nat ? 1 : 0,
            input.isolated ? 1 : 0,
            bridge,
            bridgeMac,
            now(),
          );
      } catch (error) {
        throw uniqueConflict(error, {
          "networks.name": `a network named "${name}" already exists`,
          "networks.bridge": `the bridge ${bridge} already belongs to another network`,
          "networks.bridge_mac": `the MAC ${bridgeMac} is already another network's bridge's`,
          "networks.id": `a network with id ${id} already exists`,
        });
      }
      return this.get(id);
    });
  }

  /** The network with this id, or else with this name, if there is one. */
  find(idOrName: string): Network | undefined {
    const row = (this.#db.prepare("SELECT * FROM networks WHERE id = ?").get(idOrName) ??
      this.#db.prepare("SELECT * FROM networks WHERE name = ?").get(idOrName)) as
      | NetworkRow
      | undefined;
    return row && toNetwork(row);
  }

  /** The network with this id or name; throws CORRAL_NOT_FOUND when there is none. */
  get(idOrName: string): Network {
    const network = this.find(idOrName);
    if (!network) {
      throw new CorralError(ErrorCodes.NOT_FOUND, `no network with id or name "${idOrName}"`);
    }
    return network;
  }

  /** The networks in the order they were added. */
  list(): Network[] {
    const rows = this.#db
      .prepare("SELECT * FROM networks ORDER BY rowid")
      .all() as unknown as NetworkRow[];
    return rows.map(toNetwork);
  }

  /**
   * Deletes the network and returns it. Throws CORRAL_NOT_FOUND when it is gone, CORRAL_CONFLICT
   * naming the VMs with a NIC on it.
   */
  remove(idOrName: string): Network {
    return this.#db.transaction(() => {
      const network = this.get(idOrName);
      const users = this.#db
        .prepare(
          `SELECT DISTINCT vms.name FROM nics JOIN vms ON vms.id = nics.vm_id
           WHERE nics.network_id = ? ORDER BY vms.name`,
        )
        .all(network.id) as { name: string }[];
      if (users.length > 0) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `network "${network.name}" is in use by ${users.map((row) => `VM "${row.name}"`).join(", ")}: delete them first`,
        );
      }
      this.#db.prepare("DELETE FROM networks WHERE id = ?").run(network.id);
      return network;
    });
  }
}

/** Every MAC in use: NICs' and bridges'. */
export function takenMacs(db: Database): Set<string> {
  const rows = db
    .prepare("SELECT mac FROM nics UNION ALL SELECT bridge_mac FROM networks")
    .all() as { mac: string }[];
  return new Set(rows.map((row) => row.mac));
}

function toNetwork(row: NetworkRow): Network {
  return {
    id: row.id,
    name: row.name,
    subnet: row.subnet,
    gateway: row.gateway,
    dhcpStart: row.dhcp_start,
    dhcpEnd: row.dhcp_end,
    nat: row.nat === 1,
    isolated: row.isolated === 1,
    bridge: row.bridge,
    bridgeMac: row.bridge_mac,
    createdAt: row.created_at,
  };
}
