// A persistent VM's run files: removed when its run ends, but never a later run's in the same
// folder (resize.test.ts saw a persistent VM restarted by an attached Machine lose its sockets
// and vm.json to the cleanup of the process that had spawned the VM before).

import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { VmRecord } from "../../../src/backends/backend.ts";
import { removeRunFiles, writeVmRecord } from "../../../src/backends/vm-record.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-vm-record-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A run's record; its sockets are plain files here, in the same places for every run. */
async function run(pid: number, startTime: number): Promise<VmRecord> {
  const sockets = { qmp: join(dir, "qmp.sock"), shell: join(dir, "shell.sock") };
  for (const path of Object.values(sockets)) await writeFile(path, "");
  return {
    format: 1,
    backend: "qemu",
    name: "grow",
    pid,
    startTime,
    accelerator: "tcg",
    sockets,
    spec: { stateDir: dir } as VmRecord["spec"],
    startedAt: new Date().toISOString(),
  };
}

describe("removeRunFiles", () => {
  it("removes the ended run's record and sockets", async () => {
    const ended = await run(100, 5000);
    await writeVmRecord(ended);
    await removeRunFiles(ended);
    expect(["vm.json", "qmp.sock", "shell.sock"].filter((f) => existsSync(join(dir, f)))).toEqual(
      [],
    );
  });

  it("leaves a later run's files alone, and files no record names", async () => {
    const ended = await run(100, 5000);
    await writeVmRecord(await run(100, 7000)); // the pid reused by the next run
    await removeRunFiles(ended);
    await writeVmRecord(await run(200, 7000));
    await removeRunFiles(ended);
    expect(["vm.json", "qmp.sock", "shell.sock"].filter((f) => existsSync(join(dir, f)))).toEqual([
      "vm.json",
      "qmp.sock",
      "shell.sock",
    ]);
    await rm(join(dir, "vm.json"));
    await removeRunFiles(ended); // removed already by whoever saw the end first
    expect(existsSync(join(dir, "qmp.sock"))).toBe(true);
  });
});
