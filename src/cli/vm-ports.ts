// `corral vm port add|ls|rm`: a VM's port forwards (a host port to a port of the VM on its
// bridged network, or of its user-mode NIC where the daemon has no networks), through the API.

import { type Command, Option } from "commander";
import type { CreatePortForwardRequest, PortForwardViewType } from "../manager/network-schemas.ts";
import {
  type ApiFlags,
  callApi,
  printJson,
  printTable,
  query,
  segment,
  withApiOptions,
} from "./api-command.ts";
import { parsePort } from "./parse.ts";

interface PortFlags extends ApiFlags {
  protocol: "tcp" | "udp";
  address?: string;
  network?: string;
}

export function registerVmPorts(vm: Command): void {
  const port = vm
    .command("port")
    .description("forward host ports to a VM: add, list, remove")
    .addHelpText(
      "after",
      "\nA forward reaches the VM from other hosts, from the host itself and from 127.0.0.1 " +
        "(or only on --address); it goes with the VM. A port corral forwards already, or that " +
        "anything on the host listens on, is refused (409). With networks it goes to the VM's " +
        "NIC on a bridged network (nftables); on a daemon without them (no root, or " +
        "--networks off) to the VM's user-mode NIC (a QEMU hostfwd rule, kept across restarts).",
    );

  withApiOptions(
    port
      .command("add")
      .description("forward a host port to a port of the VM")
      .argument("<vm>", "the VM's name or id")
      .argument("<hostPort>", "the host's port", parsePort)
      .argument("[guestPort]", "the VM's port (default: the same)", parsePort)
      .addOption(protocolOption())
      .option("--address <address>", "only this address of the host (default: all of them)")
      .option(
        "--network <network>",
        "the VM's NIC on this network (default: its first; none without networks)",
      )
      .addHelpText(
        "after",
        "\nExamples:\n  corral vm port add web 8080 80\n  corral vm port add dns 5353 53 --protocol udp",
      ),
    { hasJson: true },
  ).action((idOrName: string, hostPort: number, guestPort: number | undefined, flags: PortFlags) =>
    callApi(flags, async (api) => {
      const body: CreatePortForwardRequest = {
        hostPort,
        guestPort: guestPort ?? hostPort,
        protocol: flags.protocol,
        ...(flags.address !== undefined && { hostAddress: flags.address }),
        ...(flags.network !== undefined && { network: flags.network }),
      };
      const forward = await api.request<PortForwardViewType>(
        "POST",
        `/v1/vms/${segment(idOrName)}/ports`,
        { body },
      );
      if (flags.json) return printJson(forward);
      process.stdout.write(`forwarding ${describe(forward)}\n`);
    }),
  );

  withApiOptions(
    port
      .command("ls")
      .alias("list")
      .description(
        "list the VM's port forwards and the connections each has forwarded (- for user-mode ones: QEMU counts none)",
      )
      .argument("<vm>", "the VM's name or id")
      .addHelpText("after", "\nExample:\n  corral vm port ls web"),
    { hasJson: true },
  ).action((idOrName: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const forwards = await api.request<PortForwardViewType[]>(
        "GET",
        `/v1/vms/${segment(idOrName)}/ports`,
      );
      if (flags.json) return printJson(forwards);
      printTable(
        ["PROTOCOL", "HOST", "GUEST", "MODE", "CONNECTIONS"],
        forwards.map((f) => [
          f.protocol,
          `${f.hostAddress}:${f.hostPort}`,
          `${f.guestAddress}:${f.guestPort}`,
          f.mode,
          f.connections === null ? "-" : String(f.connections),
        ]),
        "no port forwards",
      );
    }),
  );

  withApiOptions(
    port
      .command("rm")
      .description("stop forwarding a host port to the VM")
      .argument("<vm>", "the VM's name or id")
      .argument("<hostPort>", "the forwarded host port", parsePort)
      .addOption(protocolOption())
      .addHelpText("after", "\nExample:\n  corral vm port rm web 8080"),
  ).action((idOrName: string, hostPort: number, flags: PortFlags) =>
    callApi(flags, async (api) => {
      const removed = await api.request<PortForwardViewType>(
        "DELETE",
        `/v1/vms/${segment(idOrName)}/ports/${hostPort}${query({ protocol: flags.protocol })}`,
      );
      process.stdout.write(`stopped forwarding ${describe(removed)}\n`);
    }),
  );
}

function protocolOption(): Option {
  return new Option("--protocol <protocol>", "tcp or udp").choices(["tcp", "udp"]).default("tcp");
}

function describe(f: PortForwardViewType): string {
  return `${f.protocol} ${f.hostAddress}:${f.hostPort} → ${f.vm} ${f.guestAddress}:${f.guestPort}`;
}
