// The test driver: two VMs on a VLAN to their shells against bare QEMU to the point where the
// backdoor starts (the floor under the driver's time), the two-machine example's wall time, and
// `corral test` over a folder of 6 files with 1 and 2 jobs and with --reuse-boot.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { removeBootSnapshots } from "../src/driver/boot-snapshots.ts";
import { startMachines } from "../src/driver/start-machines.ts";
import type { Accelerator } from "../src/host/accelerator.ts";
import { SupervisedProcess } from "../src/host/supervised-process.ts";
import { VlanSwitch } from "../src/host/vlan-switch.ts";
import { log, median, results, runCli, timed } from "./measure.ts";

const DRIVER_RUNS = 3;
const EXAMPLE = fileURLToPath(new URL("../examples/two-machines.ts", import.meta.url));
const RUNNER_FIXTURES = fileURLToPath(new URL("../test/fixtures/runner", import.meta.url));

/**
 * Two VMs of the image on one VLAN, started with bare QEMU (the image's start script, a NIC on a
 * vde switch, a virtconsole so the backdoor can start) until both consoles say the backdoor
 * started.
 */
async function bareBootOfTwo(imageDir: string, accelerator: Accelerator): Promise<number> {
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

export async function benchDriver(imageDir: string, accelerator: Accelerator): Promise<void> {
  log(`two machines: bare QEMU vs the driver, ${DRIVER_RUNS} runs each...`);
  const bare: number[] = [];
  const driven: number[] = [];
  for (let i = 0; i < DRIVER_RUNS; i++) {
    bare.push(await bareBootOfTwo(imageDir, accelerator));
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
    exampleRuns.push(
      await timed(() => runCli(["test", EXAMPLE, "--output-dir", join(out, "results")])),
    );
    await rm(out, { recursive: true, force: true });
  }
  results.twoMachineExampleMedianS = median(exampleRuns) / 1000;
}

/**
 * `corral test` over the runner's 6-file fixture folder (two files boot a VM, one fails, one times
 * out: exit 1): --jobs 1, --jobs 2, and --jobs 2 --reuse-boot once its first run saved the boot.
 */
export async function benchRunner(): Promise<void> {
  const run = async (flags: string[]): Promise<number> => {
    const out = await mkdtemp(join(tmpdir(), "corral-bench-out-"));
    try {
      return await timed(() =>
        runCli(["test", RUNNER_FIXTURES, ...flags, "--output-dir", join(out, "results")], {}, 1),
      );
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  };
  await removeBootSnapshots("runnervm");
  log("corral test on the 6-file folder: --jobs 1, --jobs 2, --jobs 2 --reuse-boot...");
  const jobs1 = await run(["--jobs", "1"]);
  const jobs2 = await run(["--jobs", "2"]);
  await run(["--jobs", "2", "--reuse-boot"]);
  const reused = await run(["--jobs", "2", "--reuse-boot"]);
  await removeBootSnapshots("runnervm");
  results.runnerJobs1S = jobs1 / 1000;
  results.runnerJobs2S = jobs2 / 1000;
  results.runnerJobs2ReuseBootS = reused / 1000;
  results.runnerJobs2VsJobs1 = jobs2 / jobs1;
  results.runnerReuseBootVsJobs1 = reused / jobs1;
}
