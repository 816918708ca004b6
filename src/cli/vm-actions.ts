// `corral vm start|stop|pause|resume|reboot|resize|wait|stats`: a VM's lifecycle through the
// daemon's API. Actions wait for the transition unless --no-wait.

import type { Command } from "commander";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { ResizeVmRequest, StopVmRequest, VmViewType } from "../manager/vm-schemas.ts";
import {
  type ApiFlags,
  callApi,
  printJson,
  query,
  segment,
  withApiOptions,
} from "./api-command.ts";
import { interruptSignal } from "./interrupt.ts";
import { parseNonNegativeInteger, parsePositiveInteger } from "./parse.ts";
import { printStats, type VmStatsViewType } from "./vm-format.ts";

interface ActionFlags extends ApiFlags {
  wait: boolean;
}

const DEFAULT_WAIT_TIMEOUT_MS = 60_000;
/** How much longer than the daemon's own wait the client waits for its answer. */
const ANSWER_MARGIN_MS = 10_000;

const SIMPLE_ACTIONS = [
  ["start", "start a created or stopped VM", "corral vm start web"],
  ["pause", "pause a running VM (its vCPUs stop; memory stays)", "corral vm pause web"],
  ["resume", "resume a paused VM", "corral vm resume web"],
  ["reboot", "reboot a running VM's guest", "corral vm reboot web"],
] as const;

export function registerVmActions(vm: Command): void {
  for (const [action, description, example] of SIMPLE_ACTIONS) {
    actionCommand(vm, action, description, example).action((idOrName: string, flags: ActionFlags) =>
      runAction(idOrName, action, undefined, flags),
    );
  }

  actionCommand(
    vm,
    "stop",
    "stop a VM: ACPI power-down with a grace period, then forced",
    "corral vm stop web --grace 5000\n  corral vm stop web --force",
  )
    .option("--force", "power off at once, no ACPI request")
    .option(
      "--grace <ms>",
      "wait this long for the guest to power off (daemon default: 30000)",
      parseNonNegativeInteger,
    )
    .action((idOrName: string, flags: ActionFlags & { force?: boolean; grace?: number }) => {
      const body: StopVmRequest = {
        ...(flags.force && { force: true }),
        ...(flags.grace !== undefined && { graceMs: flags.grace }),
      };
      return runAction(idOrName, "stop", body, flags);
    });

  actionCommand(
    vm,
    "resize",
    "change a VM's vCPUs, memory or disk: a running VM grows at once (memory in steps of 128 MiB), up to its template's max, and the call returns once its guest sees it; one at rest gets new vCPUs and memory at its next start (a disk grows while its VM runs)",
    "corral vm resize web --cpus 4 --memory 2048 --disk 16",
    { hasWait: false },
  )
    .option("--cpus <n>", "vCPUs", parsePositiveInteger)
    .option("--memory <MiB>", "memory in MiB", parsePositiveInteger)
    .option("--disk <GiB>", "disk size in GiB", parsePositiveInteger)
    .action(
      (
        idOrName: string,
        flags: ActionFlags & { cpus?: number; memory?: number; disk?: number },
      ) => {
        const body: ResizeVmRequest = {
          ...(flags.cpus !== undefined && { cpus: flags.cpus }),
          ...(flags.memory !== undefined && { memoryMiB: flags.memory }),
          ...(flags.disk !== undefined && { diskGiB: flags.disk }),
        };
        if (Object.keys(body).length === 0) {
          throw new CorralError(
            ErrorCodes.INVALID_ARGUMENT,
            "vm resize: give the new size with --cpus, --memory and/or --disk",
          );
        }
        return runAction(idOrName, "resize", body, { ...flags, wait: true });
      },
    );

  withApiOptions(
    vm
      .command("wait")
      .description("wait until a VM is in a state (the daemon long-polls; no busy loop)")
      .argument("<vm>", "the VM's name or id")
      .requiredOption("--state <state>", "the state to wait for (running, stopped, paused…)")
      .option(
        "--timeout <ms>",
        `give up after this long (default ${DEFAULT_WAIT_TIMEOUT_MS})`,
        parsePositiveInteger,
        DEFAULT_WAIT_TIMEOUT_MS,
      )
      .addHelpText("after", "\nExample:\n  corral vm wait web --state running --timeout 120000"),
    { hasJson: true },
  ).action((idOrName: string, flags: ApiFlags & { state: string; timeout: number }) =>
    callApi(flags, async (api) => {
      const reached = await api.request<VmViewType>(
        "GET",
        `/v1/vms/${segment(idOrName)}/wait${query({ state: flags.state, timeoutMs: flags.timeout })}`,
        { signal: interruptSignal(), headersTimeoutMs: flags.timeout + ANSWER_MARGIN_MS },
      );
      if (flags.json) return printJson(reached);
      process.stdout.write(`${reached.name}: ${reached.state}\n`);
    }),
  );

  withApiOptions(
    vm
      .command("stats")
      .description("a VM's VMM CPU time and memory, disk I/O, uptime, and its NICs' traffic")
      .argument("<vm>", "the VM's name or id")
      .addHelpText("after", "\nExample:\n  corral vm stats web --json"),
    { hasJson: true },
  ).action((idOrName: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const stats = await api.request<VmStatsViewType>("GET", `/v1/vms/${segment(idOrName)}/stats`);
      if (flags.json) return printJson(stats);
      printStats(stats);
    }),
  );
}

function actionCommand(
  vm: Command,
  action: string,
  description: string,
  example: string,
  { hasWait = true } = {},
): Command {
  const command = vm
    .command(action)
    .description(description)
    .argument("<vm>", "the VM's name or id")
    .addHelpText("after", `\nExample:\n  ${example}`);
  if (hasWait) {
    command.option("--no-wait", "return at once (202) instead of waiting for the transition");
  }
  return withApiOptions(command, { hasJson: true });
}

/** POST /v1/vms/{vm}/{action}; prints the VM's state after it. */
function runAction(idOrName: string, action: string, body: object | undefined, flags: ActionFlags) {
  return callApi(flags, async (api) => {
    const path = `/v1/vms/${segment(idOrName)}/${action}${flags.wait ? "" : query({ wait: false })}`;
    const after = await api.request<VmViewType>("POST", path, {
      body: body ?? {},
      signal: interruptSignal(),
    });
    if (flags.json) return printJson(after);
    process.stdout.write(`${after.name}: ${after.state}${flags.wait ? "" : " (not waiting)"}\n`);
  });
}
