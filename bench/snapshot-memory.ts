// What the snapshot bench reads beside its timings: a VM's QEMU memory by kind from
// /proc/<pid>/smaps_rollup, a guest's own memory use, and how long a snapshot kept the VM paused.

import { readdirSync, readFileSync } from "node:fs";
import type { Machine } from "../src/machine/machine.ts";

/** PSS of a QEMU process in MiB: all of it, its file-backed share (the mapped snapshot pages
 * and QEMU's own binary), and the rest (its private copies of written pages, the TCG
 * translation cache, QEMU's heap): what a clone costs beyond the shared snapshot. */
export interface QemuPss {
  pssMiB: number;
  fileMiB: number;
  extraMiB: number;
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

export function qemuPss(pid: number): QemuPss {
  const fields = Object.fromEntries(
    readFileSync(`/proc/${pid}/smaps_rollup`, "utf8")
      .split("\n")
      .map((line) => /^(\w+):\s+(\d+) kB/.exec(line))
      .filter((match) => match !== null)
      .map((match) => [match[1], Number(match[2]) / 1024]),
  );
  const pssMiB = fields.Pss ?? 0;
  const fileMiB = fields.Pss_File ?? 0;
  return { pssMiB, fileMiB, extraMiB: pssMiB - fileMiB };
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
