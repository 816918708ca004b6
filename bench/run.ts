// `npm run bench [-- --json]`: measures image build (cold and cached), boot to shell, the
// accelerator, and on a booted guest the command round trip, waitForUnit's delay and copy speed. Medians of repeated runs; a kernel-only boot of the same image
// under QEMU, measured in the same run, is the baseline that boot-to-shell is compared with.

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveAccelerator } from "../src/host/accelerator.ts";
import { SupervisedProcess } from "../src/host/supervised-process.ts";
import { buildImage } from "../src/images/build-image.ts";
import { findImage } from "../src/images/image-cache.ts";
import { Machine } from "../src/machine/machine.ts";

const asJson = process.argv.includes("--json");
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const BOOT_RUNS = 3;
const CACHED_BUILD_RUNS = 5;
const ROUND_TRIPS = 200;
const UNIT_WAITS = 5;
const COPY_MIB = 64;

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

function runCli(args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`corral ${args.join(" ")}: exit ${code}`)),
    );
  });
}

/** Boots only the image's kernel (no root disk) until it panics: QEMU plus kernel, no userspace. */
async function kernelOnlyBoot(kernel: string, accelerator: string): Promise<number> {
  const started = performance.now();
  const qemu = await SupervisedProcess.spawn("qemu-system-x86_64", [
    ...["-accel", accelerator, "-cpu", accelerator === "kvm" ? "host" : "max", "-m", "1024"],
    ...["-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot"],
    ...["-kernel", kernel, "-append", "console=ttyS0 panic=-1 quiet mitigations=off"],
  ]);
  await using _ = qemu;
  await new Promise<void>((resolve) => {
    qemu.child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("Kernel panic")) resolve();
    });
    void qemu.exited.then(() => resolve());
  });
  return performance.now() - started;
}

const results: Record<string, number | string> = {};

const verdict = await resolveAccelerator();
results.accelerator = verdict.accelerator;
log(`accelerator: ${verdict.accelerator} (${verdict.reason})`);

const coldCache = await mkdtemp(join(tmpdir(), "corral-bench-cache-"));
try {
  const saved = process.env.XDG_CACHE_HOME;
  process.env.XDG_CACHE_HOME = coldCache;
  log("image build, cold (empty cache)...");
  results.imageBuildColdS = (await timed(() => buildImage("debian-12"))) / 1000;
  if (saved === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = saved;

  log(`\`corral image build\`, cached, ${CACHED_BUILD_RUNS} runs...`);
  const cached: number[] = [];
  for (let i = 0; i < CACHED_BUILD_RUNS; i++) {
    cached.push(await timed(() => runCli(["image", "build"], { XDG_CACHE_HOME: coldCache })));
  }
  results.imageBuildCachedMedianS = median(cached) / 1000;
} finally {
  await rm(coldCache, { recursive: true, force: true });
}

await buildImage("debian-12");
const image = await findImage("debian-12");
log(`kernel-only boot (baseline), ${BOOT_RUNS} runs...`);
const kernelBoots: number[] = [];
for (let i = 0; i < BOOT_RUNS; i++) {
  kernelBoots.push(await kernelOnlyBoot(join(image.dir, "vmlinuz"), verdict.accelerator));
}
results.kernelOnlyBootMedianS = median(kernelBoots) / 1000;

log(`boot to backdoor shell, ${BOOT_RUNS} runs...`);
const boots: number[] = [];
for (let i = 0; i < BOOT_RUNS; i++) {
  await using machine = new Machine();
  boots.push(await timed(() => machine.waitForShell()));
  if (i === BOOT_RUNS - 1) await measureGuestVerbs(machine);
}
results.bootToShellMedianS = median(boots) / 1000;
results.bootToShellVsKernelOnly = median(boots) / median(kernelBoots);

/** Round trip, waitForUnit latency and copy speed, once the guest has finished booting. */
async function measureGuestVerbs(machine: Machine): Promise<void> {
  await machine.waitForUnit("multi-user.target");
  log(`succeed("true"), ${ROUND_TRIPS} runs...`);
  const roundTrips: number[] = [];
  for (let j = 0; j < ROUND_TRIPS; j++) roundTrips.push(await timed(() => machine.succeed("true")));
  results.succeedTrueMedianMs = median(roundTrips);

  // How long after a unit became active (guest clock) waitForUnit has returned and the next
  // command runs: an upper bound on waitForUnit's own delay.
  log(`waitForUnit latency, ${UNIT_WAITS} units...`);
  const latencies: number[] = [];
  for (let j = 0; j < UNIT_WAITS; j++) {
    const unit = `bench-${j}.service`;
    await machine.succeed(
      `systemd-run --no-block --unit=${unit} -p ExecStartPre='/bin/sleep 1' sleep 600`,
    );
    await machine.waitForUnit(unit);
    const object = `/org/freedesktop/systemd1/unit/${unit.replace(/-/g, "_2d").replace(/\./g, "_2e")}`;
    const out = await machine.succeed(
      `echo \${EPOCHREALTIME/./}; busctl get-property org.freedesktop.systemd1 ${object} org.freedesktop.systemd1.Unit ActiveEnterTimestamp`,
    );
    const [now, property] = out.trim().split("\n");
    latencies.push((Number(now) - Number(property?.split(" ")[1])) / 1000);
  }
  results.waitForUnitLatencyMedianMs = median(latencies);

  log(`copyFromHost of ${COPY_MIB} MiB...`);
  const file = join(tmpdir(), `corral-bench-${process.pid}.bin`);
  await writeFile(file, Buffer.alloc(COPY_MIB * 1024 * 1024, 0x5a));
  try {
    const copyMs = await timed(() => machine.copyFromHost(file, "/root/bench.bin"));
    results.copyFromHostMiBPerS = COPY_MIB / (copyMs / 1000);
  } finally {
    await rm(file, { force: true });
  }
}

const rows: [string, string][] = [
  ["accelerator", String(results.accelerator)],
  ["image build, cold", `${Number(results.imageBuildColdS).toFixed(1)} s`],
  [
    `corral image build, cached (median of ${CACHED_BUILD_RUNS})`,
    `${Number(results.imageBuildCachedMedianS).toFixed(2)} s`,
  ],
  [
    `kernel-only boot, baseline (median of ${BOOT_RUNS})`,
    `${Number(results.kernelOnlyBootMedianS).toFixed(2)} s`,
  ],
  [
    `boot to backdoor shell (median of ${BOOT_RUNS})`,
    `${Number(results.bootToShellMedianS).toFixed(2)} s`,
  ],
  ["boot to shell / kernel-only boot", `${Number(results.bootToShellVsKernelOnly).toFixed(2)}x`],
  [
    `succeed("true") round trip (median of ${ROUND_TRIPS})`,
    `${Number(results.succeedTrueMedianMs).toFixed(1)} ms`,
  ],
  [
    `waitForUnit after the unit is active (median of ${UNIT_WAITS})`,
    `${Number(results.waitForUnitLatencyMedianMs).toFixed(0)} ms`,
  ],
  [`copyFromHost, ${COPY_MIB} MiB`, `${Number(results.copyFromHostMiBPerS).toFixed(1)} MiB/s`],
];
const width = Math.max(...rows.map(([name]) => name.length));
const table = rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join("\n");
if (asJson) {
  process.stderr.write(`${table}\n`);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  process.stdout.write(`${table}\n`);
}
