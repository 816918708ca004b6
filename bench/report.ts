// The table of figures: one row per measure that this run took.

import { results } from "./measure.ts";

type Row = [label: string, key: string, format: (value: number) => string];

const seconds = (digits: number) => (value: number) => `${value.toFixed(digits)} s`;
const ratio = (digits: number) => (value: number) => `${value.toFixed(digits)}x`;
const perSecond = (value: number) => `${Math.round(value)} req/s`;
const ms = (digits: number) => (value: number) => `${value.toFixed(digits)} ms`;
const mib = (value: number) => `${value.toFixed(0)} MiB`;
const mibPerS = (value: number) => `${value.toFixed(1)} MiB/s`;
/** A speed and its ratio to the goal. */
const towards = (goalMiBPerS: number) => (value: number) =>
  `${mibPerS(value)} (${(value / goalMiBPerS).toFixed(2)}x the goal)`;

const ROWS: Row[] = [
  ["image build, cold", "imageBuildColdS", seconds(1)],
  ["corral image build, cached (median of 5)", "imageBuildCachedMedianS", seconds(2)],
  ["kernel-only boot, baseline (median of 3)", "kernelOnlyBootMedianS", seconds(2)],
  ["boot to backdoor shell (median of 3)", "bootToShellMedianS", seconds(2)],
  ["boot to shell / kernel-only boot", "bootToShellVsKernelOnly", ratio(2)],
  [
    "idle booted VM, host CPU (4 VMs over 20 s)",
    "idleCpuPercentPerVm",
    (v) => `${v.toFixed(1)}% of a core`,
  ],
  [
    'succeed("true") round trip (median of 200)',
    "succeedTrueMedianMs",
    (v) => `${v.toFixed(1)} ms`,
  ],
  [
    "waitForUnit after the unit is active (median of 9)",
    "waitForUnitLatencyMedianMs",
    (v) => `${v.toFixed(0)} ms`,
  ],
  ["copyFromHost, 256 MiB (goal ≥ 100 MiB/s)", "copyFromHostMiBPerS", towards(100)],
  ["copyFromVm, 256 MiB (goal ≥ 100 MiB/s)", "copyFromVmMiBPerS", towards(100)],
  [
    "snapshot of a booted 512 MiB guest, create (median of 3; goal ≤ 0.5 s)",
    "snapshotCreateS",
    seconds(2),
  ],
  ["  of which the VM paused (goal ≤ 0.3 s)", "snapshotPausedS", seconds(2)],
  ["snapshot size on disk", "snapshotSizeMiB", mib],
  ["restore to first command (median of 5)", "restoreToFirstCommandMedianS", seconds(2)],
  ["restore / boot to shell (goal ≤ 0.04x)", "restoreVsBoot", ratio(3)],
  ["8 clones at once, until all answer", "clonesAllAnswerS", seconds(2)],
  ["8 clones / one restore (goal ≤ 3x)", "clonesVsOneRestore", ratio(1)],
  ["guest's used memory (MemTotal - MemAvailable), baseline", "guestUsedMiB", mib],
  ["PSS per clone (median of 8)", "clonePssMedianMiB", mib],
  ["  beyond file-backed pages (median of 8)", "cloneExtraPssMedianMiB", mib],
  ["8 clones' PSS beyond file-backed pages", "clonesExtraPssMiB", mib],
  ["  / guest's used memory (goal ≤ 2x)", "clonesExtraVsGuestUsed", ratio(1)],
  ["  of which guest pages the 8 clones wrote (private copies)", "clonesGuestWrittenMiB", mib],
  ["    / guest's used memory", "clonesGuestWrittenVsGuestUsed", ratio(1)],
  ["  of which TCG's translated code", "clonesTcgCodeMiB", mib],
  [
    "corral test two-machines.ts --reuse-boot, repeat run (median of 3; goal ≤ 5 s)",
    "twoMachineReuseBootMedianS",
    seconds(1),
  ],
  ["two VMs to backdoor, bare QEMU (median of 3)", "twoVmsBareBootMedianS", seconds(2)],
  ["two VMs to shells, driver (median of 3)", "twoVmsDriverBootMedianS", seconds(2)],
  ["driver / bare QEMU", "twoVmsDriverVsBare", ratio(2)],
  ["corral test examples/two-machines.ts (median of 3)", "twoMachineExampleMedianS", seconds(1)],
  ["corral test, 6-file folder, --jobs 1", "runnerJobs1S", seconds(1)],
  ["corral test, 6-file folder, --jobs 2", "runnerJobs2S", seconds(1)],
  [
    "corral test, 6-file folder, --jobs 2 --reuse-boot (2nd run)",
    "runnerJobs2ReuseBootS",
    seconds(1),
  ],
  ["--jobs 2 / --jobs 1", "runnerJobs2VsJobs1", ratio(2)],
  ["--jobs 2 --reuse-boot / --jobs 1", "runnerReuseBootVsJobs1", ratio(2)],
  ["GET /v1/health, unix socket (autocannon, 10 conns, 5 s)", "healthSocketRps", perSecond],
  ["GET /v1/health, TCP with the token (autocannon, 10 conns, 5 s)", "healthTcpRps", perSecond],
  ["GET /v1/vms, 100 VMs, unix socket (autocannon, 10 conns, 5 s)", "listVmsSocketRps", perSecond],
  ["GET /v1/vms, 100 VMs, TCP with the token", "listVmsTcpRps", perSecond],
  ["Machine.fromSnapshot to first command (median of 3)", "libraryCloneMedianS", seconds(2)],
  ["POST /v1/vms { fromSnapshot } until running (median of 3)", "apiCloneMedianS", seconds(2)],
  ["API clone - library clone", "apiCloneOverLibraryS", seconds(2)],
  [
    "daemon restart (SIGKILL) with 10 live VMs, until it answers",
    "restartWithLiveVmsS",
    seconds(2),
  ],
  ["POST /v1/networks (median of 5)", "networkCreateMedianMs", ms(0)],
  ["VM create, not started, no NIC (median of 5)", "vmCreateNoNicMedianMs", ms(0)],
  ["VM create, not started, a NIC on corral0 (median of 5)", "vmCreateWithNicMedianMs", ms(0)],
  ["POST /v1/vms/{id}/ports (median of 5)", "portForwardAddMedianMs", ms(0)],
  ["128 MiB VM to VM, one bridge (median of 3)", "bridgeVmToVmMiBPerS", mibPerS],
  ["128 MiB VM to VM, corral test vde VLAN (median of 3)", "vlanVmToVmMiBPerS", mibPerS],
  ["128 MiB host to VM, port forward (median of 3)", "bridgeForwardHostToVmMiBPerS", mibPerS],
  ["128 MiB host to VM, user-mode hostfwd (median of 3)", "userForwardHostToVmMiBPerS", mibPerS],
  ["POST …/guest/execute true, backdoor (median of 200)", "apiExecBackdoorMedianMs", ms(2)],
  ["Machine.execute true, same VM (median of 200)", "directExecBackdoorMedianMs", ms(2)],
  ["API exec overhead, backdoor (goal ≤ 2 ms)", "apiExecOverheadBackdoorMs", ms(2)],
  ["POST …/guest/execute true, qemu-ga (median of 50)", "apiExecQgaMedianMs", ms(1)],
  ["GuestOps.exec true, qemu-ga, same VM (median of 50)", "directExecQgaMedianMs", ms(1)],
  ["API exec overhead, qemu-ga", "apiExecOverheadQgaMs", ms(2)],
  ["PUT …/guest/files 64 MiB, backdoor (goal ≥ 30 MiB/s)", "uploadBackdoorMiBPerS", towards(30)],
  ["GET …/guest/files 64 MiB, backdoor (goal ≥ 30 MiB/s)", "downloadBackdoorMiBPerS", towards(30)],
  ["GuestOps.writeFile 64 MiB, backdoor, no HTTP", "directUploadBackdoorMiBPerS", mibPerS],
  ["GuestOps.readFile 64 MiB, backdoor, no HTTP", "directDownloadBackdoorMiBPerS", mibPerS],
  ["PUT …/guest/files 64 MiB, qemu-ga", "uploadQgaMiBPerS", mibPerS],
  ["GET …/guest/files 64 MiB, qemu-ga", "downloadQgaMiBPerS", mibPerS],
  ["GuestOps.writeFile 64 MiB, qemu-ga, no HTTP", "directUploadQgaMiBPerS", mibPerS],
  ["GuestOps.readFile 64 MiB, qemu-ga, no HTTP", "directDownloadQgaMiBPerS", mibPerS],
];

export function reportTable(): string {
  const rows: [string, string][] =
    results.accelerator === undefined ? [] : [["accelerator", String(results.accelerator)]];
  for (const [label, key, format] of ROWS) {
    const value = results[key];
    if (typeof value === "number") rows.push([label, format(value)]);
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}
