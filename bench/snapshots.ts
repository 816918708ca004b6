// Snapshots of a booted 512 MiB guest: create (and how long the VM was paused; medians over three
// guests), size on disk, restore to the first command, many clones of one snapshot at once with
// their memory (PSS), and the two-machine example's repeat run with --reuse-boot.

import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Machine } from "../src/machine/machine.ts";
import { log, median, results, runCli, timed } from "./measure.ts";
import { guestUsedMiB, pausedDuringMs, qemuPid, qemuPss } from "./snapshot-memory.ts";

const SNAPSHOTS = 3;
const RESTORES = 5;
const CLONES = 8;
const REUSE_RUNS = 3;
const EXAMPLE = fileURLToPath(new URL("../examples/two-machines.ts", import.meta.url));

export async function benchSnapshots(): Promise<void> {
  log(`snapshot of a booted 512 MiB guest, ${SNAPSHOTS} guests...`);
  const snapshotRoot = await mkdtemp(join(tmpdir(), "corral-bench-snapshot-"));
  try {
    const snapshotDir = join(snapshotRoot, "booted0");
    {
      // Each snapshot of a guest of its own: a second snapshot of one guest would also merge the
      // first one's disk layer.
      const machines = Array.from(
        { length: SNAPSHOTS },
        (_, i) => new Machine({ memoryMiB: 512, name: `booted${i}` }),
      );
      try {
        const creates: number[] = [];
        const pauses: number[] = [];
        for (const [i, machine] of machines.entries()) {
          await machine.waitForUnit("multi-user.target");
          // Booted as --reuse-boot saves it: every unit of the boot started (the clock setter
          // that restores use included) and udev done with the coldplug, whose workers, still
          // busy in a snapshot taken earlier, would go on in every restore.
          await machine.execute("systemctl is-system-running --wait; udevadm settle");
          if (i === 0) results.guestUsedMiB = await guestUsedMiB(machine);
          pauses.push(
            await pausedDuringMs(machine, async () => {
              creates.push(await timed(() => machine.snapshot(join(snapshotRoot, `booted${i}`))));
            }),
          );
        }
        results.snapshotCreateS = median(creates) / 1000;
        results.snapshotPausedS = median(pauses) / 1000;
      } finally {
        await Promise.all(machines.map((machine) => machine[Symbol.asyncDispose]()));
      }
    }
    let bytes = 0;
    for (const file of await readdir(snapshotDir)) {
      bytes += (await stat(join(snapshotDir, file))).blocks * 512;
    }
    results.snapshotSizeMiB = bytes / 2 ** 20;

    log(`restore to first command, ${RESTORES} runs...`);
    const restores: number[] = [];
    for (let i = 0; i < RESTORES; i++) {
      restores.push(await restoreToFirstCommandMs(snapshotDir, `clone${i}`));
    }
    results.restoreToFirstCommandMedianS = median(restores) / 1000;
    if (typeof results.bootToShellMedianS === "number") {
      results.restoreVsBoot = results.restoreToFirstCommandMedianS / results.bootToShellMedianS;
    }

    log(`${CLONES} clones at once...`);
    await benchClones(snapshotDir);
  } finally {
    await rm(snapshotRoot, { recursive: true, force: true });
  }
  await benchReuseBoot();
}

/**
 * A clone of the snapshot in `dir`, timed until its first command has answered (as a boot is
 * timed until its shell has), then torn down.
 */
export async function restoreToFirstCommandMs(dir: string, name: string): Promise<number> {
  let clone: Machine | undefined;
  try {
    return await timed(async () => {
      clone = await Machine.fromSnapshot(dir, { name });
      await clone.succeed("true");
    });
  } finally {
    await clone?.[Symbol.asyncDispose]();
  }
}

async function benchClones(snapshotDir: string): Promise<void> {
  const clones: Machine[] = [];
  try {
    results.clonesAllAnswerS =
      (await timed(async () => {
        clones.push(
          ...(await Promise.all(
            Array.from({ length: CLONES }, (_, i) =>
              Machine.fromSnapshot(snapshotDir, { name: `many${i}` }),
            ),
          )),
        );
        await Promise.all(clones.map((clone) => clone.succeed("true")));
      })) / 1000;
    results.clonesVsOneRestore =
      results.clonesAllAnswerS / Number(results.restoreToFirstCommandMedianS);
    const memoryFile = join(snapshotDir, "memory");
    const pss = clones.map((_, i) => qemuPss(qemuPid(`many${i}`), memoryFile));
    const sum = (key: keyof (typeof pss)[number]) => pss.reduce((total, p) => total + p[key], 0);
    results.clonePssMedianMiB = median(pss.map((p) => p.pssMiB));
    results.cloneExtraPssMedianMiB = median(pss.map((p) => p.extraMiB));
    results.clonesExtraPssMiB = sum("extraMiB");
    results.clonesExtraVsGuestUsed = results.clonesExtraPssMiB / Number(results.guestUsedMiB);
    results.clonesGuestWrittenMiB = sum("guestWrittenMiB");
    results.clonesGuestWrittenVsGuestUsed =
      results.clonesGuestWrittenMiB / Number(results.guestUsedMiB);
    results.clonesTcgCodeMiB = sum("tcgCodeMiB");
    log(
      `PSS per clone (MiB: total, file-backed, extra = guest pages written + TCG code + QEMU's own): ${pss
        .map((p) => {
          const own = p.extraMiB - p.guestWrittenMiB - p.tcgCodeMiB;
          return `${p.pssMiB.toFixed(0)}, ${p.fileMiB.toFixed(0)}, ${p.extraMiB.toFixed(0)} = ${p.guestWrittenMiB.toFixed(0)} + ${p.tcgCodeMiB.toFixed(0)} + ${own.toFixed(0)}`;
        })
        .join("; ")}`,
    );
  } finally {
    await Promise.all(clones.map((clone) => clone[Symbol.asyncDispose]()));
  }
}

/** The two-machine example run again with --reuse-boot: its machines restore, not boot. */
async function benchReuseBoot(): Promise<void> {
  log(`corral test examples/two-machines.ts --reuse-boot, 1 + ${REUSE_RUNS} runs...`);
  const args = ["test", EXAMPLE, "--reuse-boot"];
  // A boot snapshot an older corral saved would be reused as it is: the first run saves anew.
  for (const name of ["server", "client"]) await runCli(["snapshot", "rm", name]);
  await runCli(args);
  const runs: number[] = [];
  for (let i = 0; i < REUSE_RUNS; i++) runs.push(await timed(() => runCli(args)));
  results.twoMachineReuseBootMedianS = median(runs) / 1000;
}
