// `corral vm snapshot|snapshots|restore`: snapshots of the daemon's VMs (clones are made with
// `corral vm clone`, in vm.ts).

import type { Command } from "commander";
import type { VmViewType } from "../manager/vm-schemas.ts";
import {
  type ApiFlags,
  callApi,
  printJson,
  query,
  segment,
  withApiOptions,
} from "./api-command.ts";
import { interruptSignal } from "./interrupt.ts";
import { printSnapshotTable, type SnapshotViewType } from "./vm-format.ts";

export function registerVmSnapshots(vm: Command): void {
  withApiOptions(
    vm
      .command("snapshot")
      .description("snapshot a running or paused VM (memory and disk); it goes on as it was")
      .argument("<vm>", "the VM's name or id")
      .option("--name <name>", "the snapshot's name (default: the time)")
      .addHelpText("after", "\nExample:\n  corral vm snapshot web --name before-upgrade"),
    { hasJson: true },
  ).action((idOrName: string, flags: ApiFlags & { name?: string }) =>
    callApi(flags, async (api) => {
      const snapshot = await api.request<SnapshotViewType>(
        "POST",
        `/v1/vms/${segment(idOrName)}/snapshots`,
        { body: flags.name === undefined ? {} : { name: flags.name }, signal: interruptSignal() },
      );
      if (flags.json) return printJson(snapshot);
      process.stdout.write(`snapshot ${snapshot.id} ${snapshot.name} of ${snapshot.vmName}\n`);
    }),
  );

  const snapshots = vm
    .command("snapshots")
    .description("list the snapshots (default), or remove one")
    .addHelpText(
      "after",
      "\nExamples:\n  corral vm snapshots --json\n  corral vm snapshots rm 01JD5V0S2H7MZ4T6Q8R9XKAB3C",
    );
  withApiOptions(
    snapshots
      .command("ls", { isDefault: true })
      .description("list the snapshots, of every VM or of one")
      .option("--vm <vm>", "only the snapshots of this VM (name or id)")
      .addHelpText("after", "\nExample:\n  corral vm snapshots --vm web"),
    { hasJson: true },
  ).action((flags: ApiFlags & { vm?: string }) =>
    callApi(flags, async (api) => {
      const list = await api.request<SnapshotViewType[]>(
        "GET",
        `/v1/snapshots${query({ vm: flags.vm })}`,
      );
      if (flags.json) return printJson(list);
      printSnapshotTable(list);
    }),
  );
  withApiOptions(
    snapshots
      .command("rm")
      .description("delete a snapshot (refused while a clone's disk is a layer on it)")
      .argument("<snapshot>", "the snapshot's id")
      .addHelpText("after", "\nExample:\n  corral vm snapshots rm 01JD5V0S2H7MZ4T6Q8R9XKAB3C"),
  ).action((id: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      await api.request("DELETE", `/v1/snapshots/${segment(id)}`);
      process.stdout.write(`removed snapshot ${id}\n`);
    }),
  );

  withApiOptions(
    vm
      .command("restore")
      .description("roll the VM a snapshot was taken of back to it")
      .argument("<snapshot>", "the snapshot's id")
      .option("--no-wait", "return at once (202) instead of waiting for the VM to be back")
      .addHelpText("after", "\nExample:\n  corral vm restore 01JD5V0S2H7MZ4T6Q8R9XKAB3C"),
    { hasJson: true },
  ).action((id: string, flags: ApiFlags & { wait: boolean }) =>
    callApi(flags, async (api) => {
      const vmAfter = await api.request<VmViewType>(
        "POST",
        `/v1/snapshots/${segment(id)}/restore${flags.wait ? "" : query({ wait: false })}`,
        { body: {}, signal: interruptSignal() },
      );
      if (flags.json) return printJson(vmAfter);
      process.stdout.write(`${vmAfter.name}: ${vmAfter.state} (restored from ${id})\n`);
    }),
  );
}
