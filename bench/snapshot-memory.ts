// What the snapshot bench reads beside its timings: a VM's QEMU memory by kind from
// /proc/<pid>/smaps_rollup, a guest's own memory use, and how long a snapshot kept the VM paused.

import { readdirSync, readFileSync } from "node:fs";
import type { Machine } from "../src/machine/machine.ts";

/**
 * PSS of a QEMU process in MiB: all of it, its file-backed share (the mapped snapshot pages and
 * QEMU's own binary), and the rest (`extraMiB`): what a clone costs beyond the shared snapshot.
 * The rest split in three: guest pages the clone wrote (its private copies of the snapshot's
 * pages), TCG's translated code (the executable anonymous mappings), and QEMU's own (heap, the
 * VGA memory, device buffers).
 */
export interface QemuPss {
  pssMiB: number;
  fileMiB: number;
  extraMiB: number;
  guestWrittenMiB: number;
  tcgCodeMiB: number;
}

/** The pid of the QEMU process of the machine named `name` (its `-name guest=<name>`). */
export function qemuPid(name: string): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    const named = args.includes(`guest=${name}`);
    if (named && args[0]?.endsWith("qemu-system-x86_64")) return Number(entry);
  }
  throw new Error(`no QEMU process for machine ${name}`);
}

export function qemuPss(pid: number, memoryFile: string): QemuPss {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const pssMiB = field(rollup, "Pss");
  const fileMiB = field(rollup, "Pss_File");
  let guestWrittenMiB = 0;
  let tcgCodeMiB = 0;
  // One block per mapping: its header line (range, permissions, …, path), then its fields.
  for (const block of readFileSync(`/proc/${pid}/smaps`, "utf8").split(/\n(?=[0-9a-f]+-)/)) {
    const header = block.slice(0, block.indexOf("\n")).split(/\s+/);
    const path = header[5] ?? "";
    if (path === memoryFile) guestWrittenMiB += field(block, "Anonymous");
    else if (path === "" && header[1]?.includes("x")) tcgCodeMiB += field(block, "Pss");
  }
  return { pssMiB, fileMiB, extraMiB: pssMiB - fileMiB, guestWrittenMiB, tcgCodeMiB };
}

/** A `<key>: <n> kB` field of smaps text, in MiB. */
function field(text: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) / 1024;
}

/** The guest's used memory in MiB: MemTotal - MemAvailable (its page cache not counted). */
export async function guestUsedMiB(machine: Machine): Promise<number> {
  const meminfo = await machine.succeed("cat /proc/meminfo");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(meminfo)?.[1]);
  return (kib("MemTotal") - kib("MemAvailable")) / 1024;
}

/**
 * Runs `snapshot` while asking QEMU for its run state in a loop (HMP `info status`, one
 * question in flight at a time); returns how long the VM was paused as the host saw it, in ms,
 * rounded up: from the last question answered "running" before the pause to the first answer
 * "running" after it.
 */
export async function pausedDuringMs(
  machine: Machine,
  snapshot: () => Promise<void>,
): Promise<number> {
  let done = false;
  let lastRunningAsked = performance.now();
  let pausedSince: number | undefined;
  let pausedMs = 0;
  const watch = (async () => {
    while (!done) {
      const asked = performance.now();
      const status = await machine.sendMonitorCommand("info status").catch(() => "");
      const isPaused = status.includes("paused") || status.includes("postmigrate");
      if (isPaused) pausedSince ??= lastRunningAsked;
      else if (pausedSince !== undefined) {
        pausedMs += performance.now() - pausedSince;
        pausedSince = undefined;
      } else lastRunningAsked = asked;
    }
  })();
  try {
    await snapshot();
  } finally {
    // The last pause ends at most one question later.
    await new Promise((resolve) => setTimeout(resolve, 20));
    done = true;
    await watch;
  }
  return pausedMs;
}
