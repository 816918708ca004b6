// `corral vm create|clone|ls|show|rm`: the VMs of corral serve, through its API. The lifecycle
// actions, snapshots and events are registered from vm-actions.ts, vm-snapshots.ts and
// vm-events.ts.

import { type Command, Option } from "commander";
import { allBackends } from "../backends/registry.ts";
import type { CreateVmRequest, VmViewType } from "../manager/vm-schemas.ts";
import {
  type ApiFlags,
  callApi,
  printJson,
  query,
  segment,
  withApiOptions,
} from "./api-command.ts";
import { interruptSignal } from "./interrupt.ts";
import { collectLabel, parsePositiveInteger } from "./parse.ts";
import { registerVmActions } from "./vm-actions.ts";
import { registerVmConsole } from "./vm-console.ts";
import { registerVmCp } from "./vm-cp.ts";
import { registerVmEvents } from "./vm-events.ts";
import { registerVmExec } from "./vm-exec.ts";
import { printVm, printVmTable } from "./vm-format.ts";
import { registerVmGuest } from "./vm-guest.ts";
import { registerVmPorts } from "./vm-ports.ts";
import { registerVmSnapshots } from "./vm-snapshots.ts";

interface CreateFlags extends ApiFlags {
  template?: string;
  image?: string;
  os?: "linux" | "windows";
  backend?: string;
  cpus?: number;
  memory?: number;
  disk?: number;
  label?: Record<string, string>;
  start: boolean;
  wait: boolean;
  fromSnapshot?: string;
  network?: string[];
}

export function registerVm(program: Command): void {
  const vm = program
    .command("vm")
    .description("create, run, snapshot and remove the VMs of corral serve (its client)")
    .addHelpText(
      "after",
      "\nEvery vm command talks to a running `corral serve`: over its unix socket (--socket, " +
        "$CORRAL_SOCKET) or over TCP (--url, $CORRAL_URL, with the token in $CORRAL_TOKEN).\n" +
        "Exit status: 0 done; 1 the daemon refused or failed (its error code is printed) or " +
        "none runs; 2 bad usage; 130 interrupted.\n\nExample:\n" +
        "  corral vm create web --template linux-default --label env=dev\n" +
        "  corral vm ls\n  corral vm exec web -- uname -a\n  corral vm cp ./app.conf web:/etc/app.conf\n" +
        "  corral vm stop web",
    );

  withApiOptions(
    addCreateOptions(
      vm
        .command("create")
        .description(
          "create a VM from a template (default: the daemon's), an image and/or explicit sizes, and start it",
        )
        .argument("<name>", "the VM's name: a DNS label (lower-case letters, digits, '-')"),
    ).addHelpText(
      "after",
      "\nExamples:\n  corral vm create web\n" +
        "  corral vm create big --template linux-default --cpus 2 --memory 2048 --label env=dev\n" +
        "  corral vm create win --template windows-default --no-start\n" +
        "  corral vm create fast --backend cloud-hypervisor   (needs KVM and cloud-hypervisor)\n" +
        "  corral vm create copy --from-snapshot 01JD5V0S2H7MZ4T6Q8R9XKAB3C",
    ),
    { hasJson: true },
  ).action((name: string, flags: CreateFlags) =>
    createVm({ name, ...(flags.fromSnapshot && { fromSnapshot: flags.fromSnapshot }) }, flags),
  );

  withApiOptions(
    vm
      .command("clone")
      .description(
        "create a VM from a snapshot (its own disk layer, name and identity), and start it",
      )
      .argument("<snapshot>", "the snapshot's id (corral vm snapshots)")
      .argument("<name>", "the new VM's name")
      .addOption(labelOption())
      .addOption(networkOption("its snapshot's VM's, or others as many"))
      .option("--no-start", "create it stopped")
      .option("--no-wait", "return at once (202) instead of waiting until it runs")
      .addHelpText("after", "\nExample:\n  corral vm clone 01JD5V0S2H7MZ4T6Q8R9XKAB3C web-2"),
    { hasJson: true },
  ).action((snapshot: string, name: string, flags: CreateFlags) =>
    createVm({ name, fromSnapshot: snapshot }, flags),
  );

  withApiOptions(
    vm
      .command("ls")
      .alias("list")
      .description("list the VMs, optionally those in one state or with given labels")
      .option("--state <state>", "only VMs in this state (running, stopped, paused…)")
      .addOption(labelOption("only VMs with this label (key=value; repeat to require several)"))
      .addHelpText(
        "after",
        "\nExamples:\n  corral vm ls\n  corral vm ls --state running --label env=dev --json",
      ),
    { hasJson: true },
  ).action((flags: ApiFlags & { state?: string; label?: Record<string, string> }) =>
    callApi(flags, async (api) => {
      const labels = Object.entries(flags.label ?? {}).map(([key, value]) => `${key}=${value}`);
      const vms = await api.request<VmViewType[]>(
        "GET",
        `/v1/vms${query({ state: flags.state, label: labels })}`,
      );
      if (flags.json) return printJson(vms);
      printVmTable(vms);
    }),
  );

  withApiOptions(
    vm
      .command("show")
      .description("show one VM: state, sizes, template, image, labels")
      .argument("<vm>", "the VM's name or id")
      .addHelpText("after", "\nExample:\n  corral vm show web --json"),
    { hasJson: true },
  ).action((idOrName: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const shown = await api.request<VmViewType>("GET", `/v1/vms/${segment(idOrName)}`);
      if (flags.json) return printJson(shown);
      printVm(shown);
    }),
  );

  withApiOptions(
    vm
      .command("rm")
      .description(
        "delete a VM: stop it if it runs, remove its disk and folder (its snapshots stay)",
      )
      .argument("<vm>", "the VM's name or id")
      .addHelpText("after", "\nExample:\n  corral vm rm web"),
  ).action((idOrName: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      await api.request("DELETE", `/v1/vms/${segment(idOrName)}`);
      process.stdout.write(`removed ${idOrName}\n`);
    }),
  );

  registerVmActions(vm);
  registerVmSnapshots(vm);
  registerVmEvents(vm);
  registerVmPorts(vm);
  registerVmExec(vm);
  registerVmCp(vm);
  registerVmConsole(vm);
  registerVmGuest(vm);
}

/** POST /v1/vms with what the flags say; prints the VM. */
function createVm(base: Pick<CreateVmRequest, "name" | "fromSnapshot">, flags: CreateFlags) {
  const body: CreateVmRequest = {
    ...base,
    ...(flags.template !== undefined && { template: flags.template }),
    ...(flags.image !== undefined && { image: flags.image }),
    ...(flags.os !== undefined && { os: flags.os }),
    ...(flags.backend !== undefined && { backend: flags.backend }),
    ...(flags.cpus !== undefined && { cpus: flags.cpus }),
    ...(flags.memory !== undefined && { memoryMiB: flags.memory }),
    ...(flags.disk !== undefined && { diskGiB: flags.disk }),
    ...(flags.label !== undefined && { labels: flags.label }),
    ...(flags.network !== undefined && {
      networks: flags.network.includes("none") ? [] : flags.network,
    }),
    start: flags.start,
  };
  return callApi(flags, async (api) => {
    const path = `/v1/vms${flags.wait ? "" : query({ wait: false })}`;
    const created = await api.request<VmViewType>("POST", path, {
      body,
      signal: interruptSignal(),
    });
    if (flags.json) return printJson(created);
    process.stdout.write(`created ${created.name} ${created.id}: ${created.state}\n`);
  });
}

function addCreateOptions(command: Command): Command {
  return command
    .option("--template <name>", "the template it is made from (corral template ls)")
    .option("--image <image>", "the image of its disk: an image name or id (corral image ls)")
    .addOption(new Option("--os <os>", "the guest's OS family").choices(["linux", "windows"]))
    .addOption(
      new Option(
        "--backend <name>",
        "the VMM: its template's, else qemu (`corral doctor` says which can run here)",
      ).choices(allBackends().map((backend) => backend.name)),
    )
    .option("--cpus <n>", "vCPUs", parsePositiveInteger)
    .option("--memory <MiB>", "memory in MiB", parsePositiveInteger)
    .option("--disk <GiB>", "disk size in GiB", parsePositiveInteger)
    .addOption(labelOption())
    .addOption(networkOption("its template's, else corral0 where the daemon has networks"))
    .option("--no-start", "create it stopped (start it later with corral vm start)")
    .option("--no-wait", "return at once (202) instead of waiting until it runs")
    .option("--from-snapshot <id>", "clone the VM a snapshot was taken of (as corral vm clone)");
}

function networkOption(defaults: string): Option {
  return new Option(
    "--network <name>",
    `a network to give it a NIC on (repeat for several, in order; "none" for none; default: ${defaults})`,
  ).argParser((value: string, previous: string[] = []) => [...previous, value]);
}

function labelOption(description = "a label key=value (repeat for several)"): Option {
  return new Option("--label <key=value>", description).argParser(collectLabel);
}
