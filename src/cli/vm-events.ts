// `corral vm events`: follows the daemon's event stream (server-sent events) until Ctrl-C.

import type { Command } from "commander";
import { type ApiFlags, callApi, query, withApiOptions } from "./api-command.ts";
import { interruptSignal } from "./interrupt.ts";

/** The fields of an event the human output shows; the rest is printed as JSON. */
interface EventData {
  id?: number;
  time?: string;
  type?: string;
  vmId?: string | null;
  data?: unknown;
}

export function registerVmEvents(vm: Command): void {
  withApiOptions(
    vm
      .command("events")
      .description("follow the daemon's events (VM state changes, snapshots, jobs) until Ctrl-C")
      .option("--vm <vm>", "only the events of this VM (name or id)")
      .option("--after <id>", "first replay the stored events after this event id")
      .addHelpText(
        "after",
        "\nWith --json, one event per line as the API sends it (JSON Lines).\n\nExamples:\n" +
          "  corral vm events\n  corral vm events --vm web --json | jq .type",
      ),
    { hasJson: true },
  ).action((flags: ApiFlags & { vm?: string; after?: string }) =>
    callApi(flags, async (api) => {
      const path = `/v1/events${query({ vm: flags.vm, after: flags.after })}`;
      for await (const event of api.events(path, { signal: interruptSignal() })) {
        if (flags.json) {
          process.stdout.write(`${event.data}\n`);
          continue;
        }
        process.stdout.write(`${describe(event.event, event.data)}\n`);
      }
    }),
  );
}

/** `time  type  vm  data` for an event whose data is corral's event JSON; else the raw data. */
function describe(type: string, text: string): string {
  let event: EventData;
  try {
    event = JSON.parse(text) as EventData;
  } catch {
    return `${type}  ${text}`;
  }
  const data = event.data === undefined ? "" : JSON.stringify(event.data);
  return [event.time ?? "", event.type ?? type, event.vmId ?? "-", data].join("  ").trimEnd();
}
