// `npm run bench [-- --json]`: measures image build (cold and cached), boot to shell, the
// accelerator; on a booted guest the command round trip, waitForUnit's delay and copy speed; and
// snapshots (create, size, restore to first command, many clones at once); for the test driver,
// two VMs to their shells against bare QEMU, and the two-machine example.
// Medians of repeated runs; baselines (a kernel-only boot, bare QEMU) are measured in the same run.

import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startMachines } from "../src/driver/start-machines.ts";
import { VlanSwitch } from "../src/driver/vlan-switch.ts";
import { resolveAccelerator } from "../src/host/accelerator.ts";
import { SupervisedProcess } from "../src/host/supervised-process.ts";
import { buildImage } from "../src/images/build-image.ts";
import { findImage } from "../src/images/image-cache.ts";
import { unitObjectPath } from "../src/machine/guest-scripts.ts";
import { Machine } from "../src/machine/machine.ts";

const asJson = process.argv.includes("--json");
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const BOOT_RUNS = 3;
const CACHED_BUILD_RUNS = 5;
const ROUND_TRIPS = 200;
const UNIT_WAITS = 9;
const CLOCK_READS = 10;
const COPY_MIB = 64;
const DRIVER_RUNS = 3;
const RESTORES = 5;
const CLONES = 8;
const EXAMPLE = fileURLToPath(new URL("../examples/two-machines.ts", import.meta.url));

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

function hostNowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/**
 * The guest's realtime clock minus the host's, in µs, NTP-style: of several reads of the guest
 * clock, the one with the shortest round trip, taken as read halfway; error ≤ half that trip.
 */
async function guestClockOffset(machine: Machine): Promise<{ offsetUs: number; errorMs: number }> {
  let best = { offsetUs: 0, tripUs: Number.POSITIVE_INFINITY };
  for (let j = 0; j < CLOCK_READS; j++) {
    const sent = hostNowUs();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    const guest = Number(await machine.succeed("echo ${EPOCHREALTIME/./}"));
    const received = hostNowUs();
    if (received - sent < best.tripUs) {
      best = { offsetUs: guest - (sent + received) / 2, tripUs: received - sent };
    }
  }
  return { offsetUs: best.offsetUs, errorMs: best.tripUs / 2000 };
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

/**
 * Two VMs of the image on one VLAN, started with bare QEMU (the image's start script, a NIC on a
 * vde switch, a virtconsole so the backdoor can start) until both consoles say the backdoor
 * started: the floor under the driver's time to two shells.
 */
async function bareBootOfTwo(imageDir: string, accelerator: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), "corral-bench-bare-"));
  try {
    await using vlan = await VlanSwitch.start(1, dir);
    const started = performance.now();
    await Promise.all(
      [1, 2].map(async (node) => {
        const vmDir = join(dir, `vm${node}`);
        await mkdir(vmDir);
        const qemu = await SupervisedProcess.spawn(
          join(imageDir, "run-debian-12-vm"),
          [
            ...["-accel", accelerator, "-cpu", accelerator === "kvm" ? "host" : "max"],
            ...["-display", "none", "-serial", "stdio", "-device", "virtio-serial"],
            ...["-chardev", "null,id=shell", "-device", "virtconsole,chardev=shell"],
            ...["-netdev", `vde,id=vlan1,sock=${vlan.socket}`],
            ...["-device", `virtio-net-pci,netdev=vlan1,mac=52:54:00:12:01:0${node}`],
          ],
          {
            env: { ...process.env, TMPDIR: vmDir, USE_TMPDIR: "1" },
            stdio: ["pipe", "pipe", "ignore"],
          },
        );
        await using _ = qemu;
        let seen = "";
        await new Promise<void>((resolve) => {
          qemu.child.stdout?.on("data", (chunk: Buffer) => {
            seen = (seen + chunk.toString()).slice(-200);
            if (seen.includes("connecting to host...")) resolve();
          });
          void qemu.exited.then(() => resolve());
        });
      }),
    );
    return performance.now() - started;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Round trip, waitForUnit latency and copy speed, once the guest has finished booting. */
async function measureGuestVerbs(machine: Machine): Promise<void> {
  await machine.waitForUnit("multi-user.target");
  log(`succeed("true"), ${ROUND_TRIPS} runs...`);
  const roundTrips: number[] = [];
  for (let j = 0; j < ROUND_TRIPS; j++) roundTrips.push(await timed(() => machine.succeed("true")));
  results.succeedTrueMedianMs = median(roundTrips);

  // How long after a unit became active waitForUnit returned: the unit's ActiveEnterTimestamp is
  // on the guest's clock, brought to the host's with an offset measured just before.
  log(`waitForUnit latency, ${UNIT_WAITS} units...`);
  const latencies: number[] = [];
  const clockErrors: number[] = [];
  for (let j = 0; j < UNIT_WAITS; j++) {
    const unit = `bench-${j}.service`;
    const clock = await guestClockOffset(machine);
    clockErrors.push(clock.errorMs);
    await machine.succeed(
      `systemd-run --no-block --unit=${unit} -p ExecStartPre='/bin/sleep 1' sleep 600`,
    );
    await machine.waitForUnit(unit);
    const returnedUs = hostNowUs();
    const property = await machine.succeed(
      `busctl get-property org.freedesktop.systemd1 ${unitObjectPath(unit)} org.freedesktop.systemd1.Unit ActiveEnterTimestamp`,
    );
    const activeUs = Number(property.split(" ")[1]);
    latencies.push((returnedUs - (activeUs - clock.offsetUs)) / 1000);
  }
  results.waitForUnitLatencyMedianMs = median(latencies);
  results.waitForUnitClockErrorMaxMs = Math.max(...clockErrors);

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

log("snapshot of a booted 512 MiB guest...");
const snapshotRoot = await mkdtemp(join(tmpdir(), "corral-bench-snapshot-"));
try {
  const snapshotDir = join(snapshotRoot, "booted");
  {
    await using machine = new Machine({ memoryMiB: 512 });
    await machine.waitForUnit("multi-user.target");
    results.snapshotCreateS = (await timed(() => machine.snapshot(snapshotDir))) / 1000;
  }
  const files = await readdir(snapshotDir);
  let bytes = 0;
  for (const file of files) bytes += (await stat(join(snapshotDir, file))).size;
  results.snapshotSizeMiB = bytes / 2 ** 20;

  log(`restore to first command, ${RESTORES} runs...`);
  const restores: number[] = [];
  for (let i = 0; i < RESTORES; i++) {
    restores.push(
      await timed(async () => {
        await using clone = await Machine.fromSnapshot(snapshotDir, { name: `clone${i}` });
        await clone.succeed("true");
      }),
    );
  }
  results.restoreToFirstCommandMedianS = median(restores) / 1000;
  results.restoreVsBoot = median(restores) / median(boots);

  log(`${CLONES} clones at once...`);
  results.clonesAllAnswerS =
    (await timed(async () => {
      const clones = await Promise.all(
        Array.from({ length: CLONES }, (_, i) =>
          Machine.fromSnapshot(snapshotDir, { name: `many${i}` }),
        ),
      );
      try {
        await Promise.all(clones.map((clone) => clone.succeed("true")));
      } finally {
        await Promise.all(clones.map((clone) => clone[Symbol.asyncDispose]()));
      }
    })) / 1000;
} finally {
  await rm(snapshotRoot, { recursive: true, force: true });
}

log(`two machines: bare QEMU vs the driver, ${DRIVER_RUNS} runs each...`);
const bare: number[] = [];
const driven: number[] = [];
for (let i = 0; i < DRIVER_RUNS; i++) {
  bare.push(await bareBootOfTwo(image.dir, verdict.accelerator));
  driven.push(
    await timed(async () => {
      await using vms = await startMachines({ server: {}, client: {} });
      await Promise.all([vms.server.waitForShell(), vms.client.waitForShell()]);
    }),
  );
}
results.twoVmsBareBootMedianS = median(bare) / 1000;
results.twoVmsDriverBootMedianS = median(driven) / 1000;
results.twoVmsDriverVsBare = median(driven) / median(bare);

log(`corral test examples/two-machines.ts, ${DRIVER_RUNS} runs...`);
const exampleRuns: number[] = [];
for (let i = 0; i < DRIVER_RUNS; i++) {
  const out = await mkdtemp(join(tmpdir(), "corral-bench-out-"));
  exampleRuns.push(await timed(() => runCli(["test", EXAMPLE, "--output-dir", out], {})));
  await rm(out, { recursive: true, force: true });
}
results.twoMachineExampleMedianS = median(exampleRuns) / 1000;

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
  ["snapshot of a booted 512 MiB guest, create", `${Number(results.snapshotCreateS).toFixed(2)} s`],
  ["snapshot size", `${Number(results.snapshotSizeMiB).toFixed(0)} MiB`],
  [
    `restore to first command (median of ${RESTORES})`,
    `${Number(results.restoreToFirstCommandMedianS).toFixed(2)} s`,
  ],
  ["restore / boot to shell", `${Number(results.restoreVsBoot).toFixed(3)}x`],
  [
    `${CLONES} clones at once, until all answer`,
    `${Number(results.clonesAllAnswerS).toFixed(2)} s`,
  ],
  [
    `two VMs to backdoor, bare QEMU (median of ${DRIVER_RUNS})`,
    `${Number(results.twoVmsBareBootMedianS).toFixed(2)} s`,
  ],
  [
    `two VMs to shells, driver (median of ${DRIVER_RUNS})`,
    `${Number(results.twoVmsDriverBootMedianS).toFixed(2)} s`,
  ],
  ["driver / bare QEMU", `${Number(results.twoVmsDriverVsBare).toFixed(2)}x`],
  [
    `corral test examples/two-machines.ts (median of ${DRIVER_RUNS})`,
    `${Number(results.twoMachineExampleMedianS).toFixed(1)} s`,
  ],
];
const width = Math.max(...rows.map(([name]) => name.length));
const table = rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join("\n");
if (asJson) {
  process.stderr.write(`${table}\n`);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  process.stdout.write(`${table}\n`);
}
