// The shapes of the manager's network and port-forward requests and views, as TypeBox schemas: the
// server declares its routes with them (and so the OpenAPI document), the manager takes their types.

import { type Static, Type } from "typebox";

const Ipv4 = (description: string) =>
  Type.String({ pattern: "^\\d{1,3}(\\.\\d{1,3}){3}$", description });

const NETWORK_NAME_PATTERN = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

/** A VM's networks, by name: one NIC on each, in this order (the most a VM has is 16). */
export const NetworkListSchema = Type.Array(
  Type.String({ pattern: NETWORK_NAME_PATTERN, description: "a network's name" }),
  {
    maxItems: 16,
    uniqueItems: true,
    description:
      "the networks the VM has a NIC on, in order; default [corral0] where the daemon has networks, [] where it has none",
  },
);

export const CreateNetworkBody = Type.Object(
  {
    name: Type.String({
      pattern: NETWORK_NAME_PATTERN,
      description: "a DNS label: VMs on the network are <vm>.<name> to each other",
    }),
    subnet: Type.Optional(
      Type.String({
        pattern: "^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$",
        description:
          "an IPv4 block, /16 to /30, overlapping no route of the host nor another network; default: the first free /24 of 10.213.0.0/16",
      }),
    ),
    gateway: Type.Optional(Ipv4("the host's address on it; default: the subnet's first")),
    dhcpStart: Type.Optional(
      Ipv4("first address given to VMs; default: the one after the gateway"),
    ),
    dhcpEnd: Type.Optional(Ipv4("last address given to VMs; default: the subnet's last host")),
    nat: Type.Optional(
      Type.Boolean({
        description:
          "VMs reach beyond the host, masqueraded as it, and resolve outside names through it; default true. false: they reach only the host and other networks",
      }),
    ),
    isolated: Type.Optional(
      Type.Boolean({
        description:
          "no traffic to or from other networks, nor to the host beyond DHCP and DNS; default false",
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateNetworkRequest = Static<typeof CreateNetworkBody>;

const Traffic = Type.Object({
  bytes: Type.Integer(),
  packets: Type.Integer(),
  errors: Type.Integer(),
  dropped: Type.Integer(),
});

const Counter = Type.Object({ bytes: Type.Integer(), packets: Type.Integer() });

export const NetworkView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    subnet: Type.String(),
    gateway: Type.String(),
    dhcpStart: Type.String(),
    dhcpEnd: Type.String(),
    nat: Type.Boolean(),
    isolated: Type.Boolean(),
    bridge: Type.String({ description: "its Linux bridge on the host" }),
    nics: Type.Integer({ description: "how many VM NICs are on it" }),
    traffic: Type.Object(
      {
        rx: Traffic,
        tx: Traffic,
        routed: Type.Object(
          { rx: Counter, tx: Counter },
          {
            description:
              "what the host routed into (rx) and out of (tx) the network: to and from the world, the host's other links and other networks; not what stays on the bridge",
          },
        ),
      },
      {
        description:
          "what its VMs received (rx) and sent (tx), summed over their NICs as the guests see it",
      },
    ),
    createdAt: Type.String(),
  },
  { $id: "Network" },
);
export type NetworkViewType = Static<typeof NetworkView>;

export const CreatePortForwardBody = Type.Object(
  {
    hostPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    guestPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    protocol: Type.Optional(
      Type.Union([Type.Literal("tcp"), Type.Literal("udp")], { default: "tcp" }),
    ),
    hostAddress: Type.Optional(
      Ipv4("an address of the host to listen on; default 0.0.0.0: all of them, and 127.0.0.1"),
    ),
    network: Type.Optional(
      Type.String({
        description:
          "the network of the VM's NIC to forward to; default its first (none without networks: the user-mode NIC)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreatePortForwardRequest = Static<typeof CreatePortForwardBody>;

export const PortForwardView = Type.Object(
  {
    id: Type.String(),
    vmId: Type.String(),
    vm: Type.String({ description: "the VM's name" }),
    hostAddress: Type.String(),
    hostPort: Type.Integer(),
    protocol: Type.Union([Type.Literal("tcp"), Type.Literal("udp")]),
    guestAddress: Type.String({
      description: "the address of the VM's NIC it goes to (10.0.2.15 on the user-mode NIC)",
    }),
    guestPort: Type.Integer(),
    mode: Type.Union([Type.Literal("bridged"), Type.Literal("user")], {
      description:
        "bridged: nftables DNAT to the VM's NIC on a network; user: a hostfwd rule of QEMU's user-mode NIC (a daemon without networks)",
    }),
    connections: Type.Union([Type.Integer(), Type.Null()], {
      description:
        "connections (UDP: flows) it has forwarded since the host's rules were last applied; null for a user-mode forward, which QEMU does not count",
    }),
    createdAt: Type.String(),
  },
  { $id: "PortForward" },
);
export type PortForwardViewType = Static<typeof PortForwardView>;
