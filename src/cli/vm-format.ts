// How `corral vm …` shows VMs and snapshots to people: tables and `label: value` lines.

import type { Static } from "typebox";
import type { SnapshotView, VmStatsView, VmViewType } from "../manager/vm-schemas.ts";
import { formatSize, printFields, printTable } from "./api-command.ts";

export type SnapshotViewType = Static<typeof SnapshotView>;
export type VmStatsViewType = Static<typeof VmStatsView>;

/** The VMs as a table, one row each. */
export function printVmTable(vms: readonly VmViewType[]): void {
  const rows = vms.map((vm) => [
    vm.name,
    vm.state,
    vm.os,
    String(vm.spec.cpus),
    `${vm.spec.memoryMiB} MiB`,
    vm.spec.diskGiB === null ? "" : `${vm.spec.diskGiB} GiB`,
    vm.template ?? "",
    formatLabels(vm.labels),
    vm.id,
  ]);
  printTable(
    ["NAME", "STATE", "OS", "CPUS", "MEMORY", "DISK", "TEMPLATE", "LABELS", "ID"],
    rows,
    "no VMs",
  );
}

/** One VM, a field per line. */
export function printVm(vm: VmViewType): void {
  printFields([
    ["name", vm.name],
    ["id", vm.id],
    ["state", vm.stateReason ? `${vm.state} (${vm.stateReason})` : vm.state],
    ["since", vm.stateChangedAt],
    ["operation", vm.operation ?? undefined],
    ["os", vm.os],
    ["template", vm.template ?? undefined],
    ["image", vm.spec.image ?? "(none: an empty disk)"],
    ["from snapshot", vm.sourceSnapshotId ?? undefined],
    ["machine", `${vm.spec.backend} ${vm.spec.machineType}, ${vm.spec.firmware}`],
    ["cpus", limited(String(vm.spec.cpus), vm.spec.max.cpus)],
    ["memory", limited(`${vm.spec.memoryMiB} MiB`, vm.spec.max.memoryMiB, " MiB")],
    [
      "disk",
      vm.spec.diskGiB === null
        ? undefined
        : limited(`${vm.spec.diskGiB} GiB`, vm.spec.max.diskGiB, " GiB"),
    ],
    ...vm.nics.map(
      (nic) => [`nic ${nic.index}`, `${nic.address} on ${nic.network} (${nic.mac})`] as const,
    ),
    ["labels", formatLabels(vm.labels) || undefined],
    ["created", vm.createdAt],
  ]);
}

/** The snapshots as a table. */
export function printSnapshotTable(snapshots: readonly SnapshotViewType[]): void {
  const rows = snapshots.map((s) => [
    s.id,
    s.name,
    s.vmId === null ? `${s.vmName} (deleted)` : s.vmName,
    s.os,
    formatSize(s.sizeBytes),
    s.createdAt,
  ]);
  printTable(["ID", "NAME", "VM", "OS", "SIZE", "CREATED"], rows, "no snapshots");
}

/** A VM's stats: its VMM process and its disks. */
export function printStats(stats: VmStatsViewType): void {
  printFields([
    ["state", stats.state],
    ["uptime", stats.uptimeS === null ? undefined : `${stats.uptimeS.toFixed(1)} s`],
    ["vmm pid", stats.vmm ? String(stats.vmm.pid) : undefined],
    ["vmm cpu time", stats.vmm ? `${stats.vmm.cpuTimeS.toFixed(2)} s` : undefined],
    ["vmm memory", stats.vmm ? formatSize(stats.vmm.rssBytes) : undefined],
  ]);
  if (stats.block.length > 0) {
    process.stdout.write("\n");
    printTable(
      ["DEVICE", "READ", "WRITTEN", "READ OPS", "WRITE OPS"],
      stats.block.map((b) => [
        b.device,
        formatSize(b.readBytes),
        formatSize(b.writtenBytes),
        String(b.readOps),
        String(b.writeOps),
      ]),
      "",
    );
  }
  if (stats.nics.length > 0) {
    process.stdout.write("\n");
    printTable(
      ["NIC", "NETWORK", "ADDRESS", "RECEIVED", "SENT", "ERRORS", "DROPPED"],
      stats.nics.map((n) => [
        String(n.index),
        n.network,
        n.address,
        `${n.rx.bytes} B, ${n.rx.packets} pkts`,
        `${n.tx.bytes} B, ${n.tx.packets} pkts`,
        `${n.rx.errors}/${n.tx.errors}`,
        `${n.rx.dropped}/${n.tx.dropped}`,
      ]),
      "",
    );
  }
}

function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
}

function limited(value: string, max: number | undefined, unit = ""): string {
  return max === undefined ? value : `${value} (max ${max}${unit})`;
}
