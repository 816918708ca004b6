// A running VM's numbers: its VMM's CPU time and resident memory (from /proc), its disks' I/O
// (the monitor's blockstats), and how long it has run; a VM at rest has none of them. And the
// traffic of its NICs on bridged networks, from their TAPs, which outlive its runs.

import { readFile } from "node:fs/promises";
import type { Static } from "typebox";
import { TRANSFER_DISK_DRIVE } from "../backends/qemu/transfer-disk.ts";
import type { Vm } from "../store/vm-types.ts";
import type { VmContext } from "./vm-context.ts";
import { liveState } from "./vm-operations.ts";
import type { VmStatsView } from "./vm-schemas.ts";

export type VmStats = Static<typeof VmStatsView>;

/** Linux's USER_HZ: /proc reports CPU times in these ticks on every architecture corral runs on. */
const TICKS_PER_S = 100;

interface Ownership {
  pid: number;
  startTime: number;
  startedAt: string;
}

/** The numbers of VM `vm`; nulls and no disks when it does not run. */
export async function vmStats(context: VmContext, vm: Vm): Promise<VmStats> {
  const machine = context.machines.get(vm.id);
  const ownership = vm.ownership as unknown as Ownership | null;
  const nics = context.networks instanceof Error ? [] : await context.networks.nicStats(vm.id);
  const idle = { vmId: vm.id, state: vm.state, uptimeS: null, vmm: null, block: [], nics };
  if (!machine || !ownership || !liveState(machine)) return idle;
  const vmm = await processStats(ownership);
  const blockstats = await machine.sendMonitorCommand("info blockstats").catch(() => "");
  return {
    vmId: vm.id,
    state: vm.state,
    uptimeS: (Date.now() - Date.parse(ownership.startedAt)) / 1000,
    vmm: vmm ?? null,
    block: parseBlockstats(blockstats),
    nics,
  };
}

/** CPU time and RSS of process `pid`, if it is still the one that started at `startTime`. */
async function processStats(
  ownership: Ownership,
): Promise<{ pid: number; cpuTimeS: number; rssBytes: number } | undefined> {
  const { pid } = ownership;
  const [stat, status] = await Promise.all([
    readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined),
    readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined),
  ]);
  if (stat === undefined || status === undefined) return undefined;
  // Fields after the command name, which may hold spaces and parentheses: 3 (state) is [0].
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (Number(fields[19]) !== ownership.startTime) return undefined;
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  return { pid, cpuTimeS: ticks / TICKS_PER_S, rssBytes: rssKiB * 1024 };
}

/**
 * QEMU's `info blockstats` lines (`root: rd_bytes=… wr_bytes=…`) as one entry per device, but for
 * corral's transfer disk: file copies' plumbing, not a disk of the VM's.
 */
export function parseBlockstats(text: string): VmStats["block"] {
  const devices: VmStats["block"] = [];
  for (const line of text.split(/\r?\n/)) {
    const match = /^(\S+):\s+(.*)$/.exec(line.trim());
    if (!match?.[1] || !match[2]) continue;
    const values = Object.fromEntries(
      [...match[2].matchAll(/(\w+)=(\d+)/g)].map(([, key, value]) => [key, Number(value)]),
    );
    if (values.rd_bytes === undefined || match[1] === TRANSFER_DISK_DRIVE) continue;
    devices.push({
      device: match[1],
      readBytes: values.rd_bytes,
      writtenBytes: values.wr_bytes ?? 0,
      readOps: values.rd_operations ?? 0,
      writeOps: values.wr_operations ?? 0,
    });
  }
  return devices;
}
