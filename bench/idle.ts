// The idle cost of booted guests: 4 VMs booted at once, each left alone once its boot is over
// (systemd's startup finished, udev's coldplug handled), then the host CPU time of their QEMU
// processes (utime + stime in /proc/<pid>/stat) over 20 s, as a share of one host core per VM.

import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Machine } from "../src/machine/machine.ts";
import { log, results } from "./measure.ts";

const IDLE_VMS = 4;
const WINDOW_MS = 20_000;
/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat on Linux. */
const CLOCK_TICKS_PER_S = 100;

/** The pid of the QEMU process whose command line names `stateDir` (its sockets live there). */
async function qemuPid(stateDir: string): Promise<number> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.startsWith("qemu-system") && cmdline.includes(stateDir)) return Number(entry);
  }
  throw new Error(`bench: no QEMU process for ${stateDir}`);
}

/** utime + stime of `pid`, in seconds. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

export async function benchIdle(): Promise<void> {
  log(`idle cost: ${IDLE_VMS} booted VMs over ${WINDOW_MS / 1000} s...`);
  const root = await mkdtemp(join(tmpdir(), "corral-bench-idle-"));
  const machines: Machine[] = [];
  try {
    for (let i = 0; i < IDLE_VMS; i++) {
      machines.push(new Machine({ name: `idle${i}`, stateDir: join(root, `vm${i}`) }));
    }
    // The boot is over once systemd's startup has finished ("running", or "degraded") and udev
    // has handled the coldplug's events, which its workers go on with for a while after that.
    await Promise.all(
      machines.map((machine) =>
        machine.execute("systemctl is-system-running --wait; udevadm settle --timeout=120", {
          timeout: 300_000,
        }),
      ),
    );
    const pids = await Promise.all(machines.map((machine) => qemuPid(machine.stateDir ?? "")));
    const before = await Promise.all(pids.map(cpuSeconds));
    const started = performance.now();
    await sleep(WINDOW_MS);
    const after = await Promise.all(pids.map(cpuSeconds));
    const elapsedS = (performance.now() - started) / 1000;
    const spentS = after.reduce((sum, value, i) => sum + value - (before[i] ?? 0), 0);
    results.idleCpuPercentPerVm = (spentS / elapsedS / IDLE_VMS) * 100;
  } finally {
    await Promise.all(machines.map((machine) => machine[Symbol.asyncDispose]()));
    await rm(root, { recursive: true, force: true });
  }
}
