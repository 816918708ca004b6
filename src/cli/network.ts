// `corral network ls|show|create|rm`: the bridged networks of corral serve, through its API.

import type { Command } from "commander";
import type { CreateNetworkRequest, NetworkViewType } from "../manager/network-schemas.ts";
import {
  type ApiFlags,
  callApi,
  formatSize,
  printFields,
  printJson,
  printTable,
  segment,
  withApiOptions,
} from "./api-command.ts";

interface CreateFlags extends ApiFlags {
  subnet?: string;
  gateway?: string;
  dhcpStart?: string;
  dhcpEnd?: string;
  nat: boolean;
  isolated?: boolean;
}

export function registerNetwork(program: Command): void {
  const network = program
    .command("network")
    .description("list, show, create and remove the bridged networks of corral serve")
    .addHelpText(
      "after",
      "\nEach network is a Linux bridge, a dnsmasq for DHCP and DNS (VMs are <vm> and " +
        "<vm>.<network> to each other) and rules in corral's nftables table; the daemon makes " +
        "corral0 at start. They need corral serve to run as root (docs/networking.md).",
    );

  withApiOptions(
    network
      .command("ls")
      .alias("list")
      .description("list the networks with their NICs and traffic")
      .addHelpText("after", "\nExample:\n  corral network ls --json"),
    { hasJson: true },
  ).action((flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const networks = await api.request<NetworkViewType[]>("GET", "/v1/networks");
      if (flags.json) return printJson(networks);
      printTable(
        ["NAME", "SUBNET", "GATEWAY", "NAT", "ISOLATED", "NICS", "RX", "TX", "BRIDGE"],
        networks.map((n) => [
          n.name,
          n.subnet,
          n.gateway,
          n.nat ? "yes" : "no",
          n.isolated ? "yes" : "no",
          String(n.nics),
          formatSize(n.traffic.rx.bytes),
          formatSize(n.traffic.tx.bytes),
          n.bridge,
        ]),
        "no networks",
      );
    }),
  );

  withApiOptions(
    network
      .command("show")
      .description("show one network: addresses, settings and counters")
      .argument("<network>", "the network's name or id")
      .addHelpText("after", "\nExample:\n  corral network show corral0"),
    { hasJson: true },
  ).action((name: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const shown = await api.request<NetworkViewType>("GET", `/v1/networks/${segment(name)}`);
      if (flags.json) return printJson(shown);
      printNetwork(shown);
    }),
  );

  withApiOptions(
    network
      .command("create")
      .description("create a network: a bridge, its dnsmasq and its firewall rules")
      .argument("<name>", "a DNS label: VMs on it are <vm>.<name>")
      .option(
        "--subnet <cidr>",
        "an IPv4 block, /16 to /30 (default: the first free /24 of 10.213.0.0/16)",
      )
      .option("--gateway <address>", "the host's address on it (default: the subnet's first)")
      .option("--dhcp-start <address>", "first address given to VMs (default: after the gateway)")
      .option("--dhcp-end <address>", "last address given to VMs (default: the subnet's last)")
      .option("--no-nat", "VMs reach only the host and other networks, nothing beyond")
      .option("--isolated", "no traffic to other networks, nor to the host beyond DHCP and DNS")
      .addHelpText(
        "after",
        "\nExamples:\n  corral network create lab --subnet 10.50.0.0/24\n" +
          "  corral network create sandbox --isolated --no-nat",
      ),
    { hasJson: true },
  ).action((name: string, flags: CreateFlags) =>
    callApi(flags, async (api) => {
      const body: CreateNetworkRequest = {
        name,
        ...(flags.subnet !== undefined && { subnet: flags.subnet }),
        ...(flags.gateway !== undefined && { gateway: flags.gateway }),
        ...(flags.dhcpStart !== undefined && { dhcpStart: flags.dhcpStart }),
        ...(flags.dhcpEnd !== undefined && { dhcpEnd: flags.dhcpEnd }),
        nat: flags.nat,
        ...(flags.isolated && { isolated: true }),
      };
      const created = await api.request<NetworkViewType>("POST", "/v1/networks", { body });
      if (flags.json) return printJson(created);
      process.stdout.write(
        `created network ${created.name}: ${created.subnet}, gateway ${created.gateway}, bridge ${created.bridge}\n`,
      );
    }),
  );

  withApiOptions(
    network
      .command("rm")
      .description("delete a network, its bridge, dnsmasq and rules (refused while a VM is on it)")
      .argument("<network>", "the network's name or id")
      .addHelpText("after", "\nExample:\n  corral network rm lab"),
  ).action((name: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const removed = await api.request<NetworkViewType>("DELETE", `/v1/networks/${segment(name)}`);
      process.stdout.write(`removed network ${removed.name}\n`);
    }),
  );
}

function printNetwork(n: NetworkViewType): void {
  const { rx, tx, routed } = n.traffic;
  printFields([
    ["name", n.name],
    ["id", n.id],
    ["subnet", n.subnet],
    ["gateway", n.gateway],
    ["dhcp range", `${n.dhcpStart} – ${n.dhcpEnd}`],
    ["nat", n.nat ? "yes" : "no"],
    ["isolated", n.isolated ? "yes" : "no"],
    ["bridge", n.bridge],
    ["nics", String(n.nics)],
    [
      "vms received",
      `${rx.bytes} bytes, ${rx.packets} packets (${rx.errors} errors, ${rx.dropped} dropped)`,
    ],
    [
      "vms sent",
      `${tx.bytes} bytes, ${tx.packets} packets (${tx.errors} errors, ${tx.dropped} dropped)`,
    ],
    ["routed in", `${routed.rx.bytes} bytes, ${routed.rx.packets} packets`],
    ["routed out", `${routed.tx.bytes} bytes, ${routed.tx.packets} packets`],
    ["created", n.createdAt],
  ]);
}
