// Snapshots of a booted 512 MiB guest: create, size, restore to the first command, and many
// clones of one snapshot at once.

import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Machine } from "../src/machine/machine.ts";
import { log, median, results, timed } from "./measure.ts";

const RESTORES = 5;
const CLONES = 8;

export async function benchSnapshots(): Promise<void> {
  log("snapshot of a booted 512 MiB guest...");
  const snapshotRoot = await mkdtemp(join(tmpdir(), "corral-bench-snapshot-"));
  try {
    const snapshotDir = join(snapshotRoot, "booted");
    {
      await using machine = new Machine({ memoryMiB: 512 });
      await machine.waitForUnit("multi-user.target");
      results.snapshotCreateS = (await timed(() => machine.snapshot(snapshotDir))) / 1000;
    }
    let bytes = 0;
    for (const file of await readdir(snapshotDir)) {
      bytes += (await stat(join(snapshotDir, file))).size;
    }
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
    if (typeof results.bootToShellMedianS === "number") {
      results.restoreVsBoot = results.restoreToFirstCommandMedianS / results.bootToShellMedianS;
    }

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
}
