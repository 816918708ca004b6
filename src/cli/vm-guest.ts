// `corral vm ps|info|logs|services`: what runs in a VM's guest, what it is, what it logged, and
// its services (start, stop, restart one), through the daemon's guest routes.

import type { Command } from "commander";
import { CorralError, ErrorCodes } from "../errors.ts";
import {
  type ApiFlags,
  callApi,
  formatSize,
  printFields,
  printJson,
  printTable,
  query,
  segment,
  withApiOptions,
} from "./api-command.ts";
import { interruptSignal } from "./interrupt.ts";
import { parsePositiveInteger } from "./parse.ts";

interface Process {
  pid: number;
  user: string;
  command: string;
  cpuPercent: number;
  rssBytes: number;
}

interface Service {
  name: string;
  description: string;
  state: string;
  startup: string;
}

interface LogEntry {
  time: string;
  priority: number;
  source: string;
  message: string;
}

interface SystemInfo {
  os: { name: string; version: string; kernel: string };
  hostname: string;
  cpus: number;
  memory: { totalBytes: number; availableBytes: number };
  filesystems: { mountpoint: string; type: string; totalBytes: number; usedBytes: number }[];
  interfaces: { name: string; mac: string | null; addresses: string[] }[];
  uptimeS: number;
  users: string[];
}

interface LogFlags extends ApiFlags {
  follow?: boolean;
  unit?: string;
  identifier?: string;
  since?: string;
  priority?: string;
  lines?: number;
}

const SERVICE_ACTIONS = ["start", "stop", "restart"];
const guestPath = (vm: string, path: string) => `/v1/vms/${segment(vm)}/guest/${path}`;

export function registerVmGuest(vm: Command): void {
  withApiOptions(
    vm
      .command("ps")
      .description("list the processes in a VM's guest: pid, user, CPU, memory, command")
      .argument("<vm>", "the VM's name or id")
      .addHelpText(
        "after",
        "\nExamples:\n  corral vm ps web\n  corral vm ps web --json | jq '.[] | select(.user != \"root\")'",
      ),
    { hasJson: true },
  ).action((idOrName: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const processes = await api.request<Process[]>("GET", guestPath(idOrName, "processes"));
      if (flags.json) return printJson(processes);
      printTable(
        ["PID", "USER", "CPU%", "RSS", "COMMAND"],
        processes.map((p) => [
          String(p.pid),
          p.user,
          p.cpuPercent.toFixed(1),
          formatSize(p.rssBytes),
          p.command,
        ]),
        "no processes",
      );
    }),
  );

  withApiOptions(
    vm
      .command("info")
      .description("what a VM's guest is: OS, kernel, hostname, CPUs, memory, disks, addresses")
      .argument("<vm>", "the VM's name or id")
      .addHelpText(
        "after",
        "\nExamples:\n  corral vm info web\n  corral vm info web --json | jq .interfaces",
      ),
    { hasJson: true },
  ).action((idOrName: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const info = await api.request<SystemInfo>("GET", guestPath(idOrName, "system-info"));
      if (flags.json) return printJson(info);
      const { memory } = info;
      printFields([
        ["hostname", info.hostname],
        ["os", `${info.os.name} ${info.os.version}`.trim()],
        ["kernel", info.os.kernel],
        ["cpus", String(info.cpus)],
        ["memory", `${formatSize(memory.availableBytes)} free of ${formatSize(memory.totalBytes)}`],
        ["uptime", `${Math.round(info.uptimeS)} s`],
        ["users", info.users.length > 0 ? info.users.join(", ") : "(none)"],
        ...info.filesystems.map(
          (fs) =>
            [
              `fs ${fs.mountpoint}`,
              `${fs.type}, ${formatSize(fs.usedBytes)} used of ${formatSize(fs.totalBytes)}`,
            ] as const,
        ),
        ...info.interfaces.map(
          (nic) =>
            [
              `net ${nic.name}`,
              [nic.mac, ...nic.addresses].filter(Boolean).join(" ") || "(no address)",
            ] as const,
        ),
      ]);
    }),
  );

  withApiOptions(
    vm
      .command("logs")
      .description("a VM guest's logs: its journal (Linux) or event logs (Windows)")
      .argument("<vm>", "the VM's name or id")
      .option("-f, --follow", "then print new entries as they come, until Ctrl-C")
      .option("--unit <unit>", "only this systemd unit's (Windows: this event log's)")
      .option(
        "--identifier <name>",
        "only this program's (its syslog identifier, logger -t; Windows: this provider's)",
      )
      .option("--since <time>", "entries from then on: 30s, 10m, 2h, 1d ago, or an ISO 8601 time")
      .option(
        "--priority <p>",
        "the least urgent priority shown: 0–7 or emerg, alert, crit, err, warning, notice, info, debug",
      )
      .option("-n, --lines <n>", "the latest n entries (default 1000)", parsePositiveInteger)
      .addHelpText(
        "after",
        "\nWith --json, one entry per line (JSON Lines).\n\nExamples:\n" +
          "  corral vm logs web --unit nginx --since 10m\n  corral vm logs web -f --priority err",
      ),
    { hasJson: true },
  ).action((idOrName: string, flags: LogFlags) =>
    callApi(flags, async (api) => {
      const path = guestPath(
        idOrName,
        `logs${query({
          unit: flags.unit,
          identifier: flags.identifier,
          since: flags.since,
          priority: flags.priority,
          limit: flags.lines,
          follow: flags.follow ? true : undefined,
        })}`,
      );
      const print = (entry: LogEntry) =>
        process.stdout.write(
          flags.json
            ? `${JSON.stringify(entry)}\n`
            : `${entry.time} ${entry.priority} ${entry.source}: ${entry.message}\n`,
        );
      if (!flags.follow) {
        for (const entry of await api.request<LogEntry[]>("GET", path)) print(entry);
        return;
      }
      for await (const event of api.events(path, { signal: interruptSignal() })) {
        if (event.event === "log") print(JSON.parse(event.data) as LogEntry);
        if (event.event === "error") {
          const { message } = JSON.parse(event.data) as { message: string };
          throw new CorralError(
            ErrorCodes.GUEST_CHANNEL_BROKEN,
            `${idOrName}: the guest stopped answering: ${message}`,
          );
        }
      }
    }),
  );

  withApiOptions(
    vm
      .command("services")
      .description("list a VM guest's services, or start, stop or restart one")
      .argument("<vm>", "the VM's name or id")
      .argument("[action]", "start, stop or restart")
      .argument("[name]", "the service (a systemd unit; a Windows service name)")
      .addHelpText(
        "after",
        "\nExamples:\n  corral vm services web\n  corral vm services web restart nginx\n" +
          "  corral vm services web --json | jq '.[] | select(.state == \"failed\")'",
      ),
    { hasJson: true },
  ).action(
    (idOrName: string, action: string | undefined, name: string | undefined, flags: ApiFlags) =>
      callApi(flags, async (api) => {
        if (action === undefined) {
          const services = await api.request<Service[]>("GET", guestPath(idOrName, "services"));
          if (flags.json) return printJson(services);
          return printTable(
            ["NAME", "STATE", "STARTUP", "DESCRIPTION"],
            services.map((s) => [s.name, s.state, s.startup, s.description]),
            "no services",
          );
        }
        if (!SERVICE_ACTIONS.includes(action) || name === undefined) {
          throw new CorralError(
            ErrorCodes.INVALID_ARGUMENT,
            `expected services <vm> [start|stop|restart <name>], got "${[action, name].filter(Boolean).join(" ")}"`,
          );
        }
        const service = await api.request<Service>(
          "POST",
          guestPath(idOrName, `services/${segment(name)}/${action}`),
        );
        if (flags.json) return printJson(service);
        process.stdout.write(`${service.name}: ${service.state}\n`);
      }),
  );
}
