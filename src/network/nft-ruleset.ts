// corral's one nftables table, `inet corral`, rendered as an `nft -f` script from a plan of the
// networks and port forwards. The script replaces the whole table in one transaction (add, delete,
// create: the add makes the delete safe when there is no table yet) and touches no other table.
// See docs/networking.md for what each chain does and why.

import { ANY_ADDRESS, type Protocol } from "./port-forward.ts";

export const TABLE_FAMILY = "inet";
export const TABLE_NAME = "corral";

/** A network, as the firewall sees it. */
export interface FirewallNetwork {
  name: string;
  bridge: string;
  subnet: string;
  /** Masquerade what its VMs send out of the host's other interfaces; else they cannot go out. */
  nat: boolean;
  /** No traffic to other corral networks, nor to the host beyond DHCP and DNS. */
  isolated: boolean;
}

/** A port forward, as the firewall sees it. */
export interface FirewallForward {
  /** Its id: names its counter. */
  id: string;
  hostAddress: string;
  hostPort: number;
  protocol: Protocol;
  guestAddress: string;
  guestPort: number;
}

export interface FirewallPlan {
  networks: readonly FirewallNetwork[];
  forwards: readonly FirewallForward[];
  /** Counter values to start from, by name: those of the table being replaced, to keep them. */
  counters?: ReadonlyMap<string, { packets: number; bytes: number }>;
}

/** The named counter of a network's routed traffic, `direction` as the VMs see it. */
export function networkCounter(network: string, direction: "rx" | "tx"): string {
  return `net_${network.replaceAll("-", "_")}_${direction}`;
}

/** The named counter of the connections a port forward has taken. */
export function forwardCounter(forwardId: string): string {
  return `fwd_${forwardId}`;
}

const TABLE = `${TABLE_FAMILY} ${TABLE_NAME}`;

/** The `nft -f` script that deletes corral's table if it is there, and nothing else. */
export function renderDeleteTable(): string {
  return `add table ${TABLE}\ndelete table ${TABLE}\n`;
}

/** The `nft -f` script that replaces corral's table with the one `plan` describes, atomically. */
export function renderRuleset(plan: FirewallPlan): string {
  const lines = [`table ${TABLE} {`];
  const block = (head: string, body: string[]) => {
    lines.push(`  ${head} {`, ...body.map((line) => `    ${line}`), "  }");
  };
  const bridges = plan.networks.map((network) => quote(network.bridge));
  block("set bridges", [
    "type ifname",
    ...(bridges.length > 0 ? [`elements = { ${bridges.join(", ")} }`] : []),
  ]);
  const counter = (name: string) => {
    const start = plan.counters?.get(name);
    block(`counter ${name}`, start ? [`packets ${start.packets} bytes ${start.bytes}`] : []);
  };
  for (const network of plan.networks) {
    counter(networkCounter(network.name, "rx"));
    counter(networkCounter(network.name, "tx"));
  }
  for (const forward of plan.forwards) counter(forwardCounter(forward.id));
  block("chain forward", [
    "type filter hook forward priority filter; policy accept;",
    ...forwardChain(plan.networks),
  ]);
  block("chain input", [
    "type filter hook input priority filter; policy accept;",
    ...inputChain(plan.networks),
  ]);
  block("chain prerouting", [
    "type nat hook prerouting priority dstnat; policy accept;",
    ...plan.forwards.map(dnatRule),
  ]);
  // nft 1.0.6 refuses `priority dstnat` on the output hook; -100 is its value.
  block("chain output", [
    "type nat hook output priority -100; policy accept;",
    ...plan.forwards.map(dnatRule),
  ]);
  block("chain postrouting", [
    "type nat hook postrouting priority srcnat; policy accept;",
    ...postroutingChain(plan.networks),
  ]);
  lines.push("}");
  return `${renderDeleteTable()}${lines.join("\n")}\n`;
}

function forwardChain(networks: readonly FirewallNetwork[]): string[] {
  if (networks.length === 0) return [];
  const rules: string[] = [];
  for (const network of networks) {
    const bridge = quote(network.bridge);
    rules.push(`iifname ${bridge} counter name ${networkCounter(network.name, "tx")}`);
    rules.push(`oifname ${bridge} counter name ${networkCounter(network.name, "rx")}`);
  }
  // Replies, and connections a port forward sent in, pass whatever follows.
  rules.push("ct state established,related accept", "ct status dnat accept");
  for (const network of networks) {
    const bridge = quote(network.bridge);
    rules.push(`oifname ${bridge} iifname != @bridges drop comment "nothing new in from outside"`);
    if (!network.nat) {
      rules.push(`iifname ${bridge} oifname != @bridges drop comment "no NAT: no way out"`);
    }
    if (network.isolated) {
      rules.push(`iifname ${bridge} oifname @bridges drop comment "isolated"`);
      rules.push(`oifname ${bridge} iifname @bridges drop comment "isolated"`);
    }
  }
  return rules;
}

function inputChain(networks: readonly FirewallNetwork[]): string[] {
  return networks
    .filter((network) => network.isolated)
    .flatMap((network) => {
      const iif = `iifname ${quote(network.bridge)}`;
      return [
        `${iif} ct state established,related accept`,
        `${iif} udp dport { 53, 67 } accept comment "DHCP and DNS"`,
        `${iif} tcp dport 53 accept comment "DNS"`,
        `${iif} drop comment "isolated from the host"`,
      ];
    });
}

function postroutingChain(networks: readonly FirewallNetwork[]): string[] {
  const rules: string[] = [];
  for (const network of networks) {
    if (network.nat) rules.push(`ip saddr ${network.subnet} oifname != @bridges masquerade`);
    // A forward reached from 127.0.0.1 (with route_localnet on the bridge) or from a VM of the
    // same network (hairpin): the guest must answer through the host, so the source becomes its
    // gateway.
    rules.push(
      `oifname ${quote(network.bridge)} ct status dnat ip saddr { 127.0.0.0/8, ${network.subnet} } masquerade`,
    );
  }
  return rules;
}

function dnatRule(forward: FirewallForward): string {
  const destination =
    forward.hostAddress === ANY_ADDRESS
      ? "fib daddr type local"
      : `ip daddr ${forward.hostAddress}`;
  return [
    destination,
    `${forward.protocol} dport ${forward.hostPort}`,
    `counter name ${forwardCounter(forward.id)}`,
    `dnat ip to ${forward.guestAddress}:${forward.guestPort}`,
  ].join(" ");
}

function quote(text: string): string {
  return `"${text}"`;
}
