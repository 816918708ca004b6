// Resizing a running machine: vCPUs and memory hot-added and onlined by the guest, the root disk
// grown, refusals naming the limit, and the new size kept across a stop and start of a persistent
// machine that another Machine attached to. Also that the headroom arguments leave a start
// script's own -smp and -m in place (QEMU paused before boot, no guest).

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, findImage, Machine } from "corral";
import { describe, expect, it, onTestFinished } from "vitest";
import { sizeArgs } from "../../src/backends/qemu/hotplug.ts";

const GIB = 2 ** 30;

/** A persistent machine's state folder; a VM a failed test leaves running is killed after it. */
function persistentDir(): string {
  const stateDir = mkdtempSync(join(tmpdir(), "corral-resize-"));
  onTestFinished(() => {
    try {
      const record = join(stateDir, "vm.json");
      if (existsSync(record)) process.kill(JSON.parse(readFileSync(record, "utf8")).pid, "SIGKILL");
    } catch {
      // already gone
    }
    rmSync(stateDir, { recursive: true, force: true });
  });
  return stateDir;
}

/** What the guest itself reports: `nproc`, MemTotal in kB, the root disk's size in bytes. */
async function guestView(machine: Machine) {
  const [nproc, memTotalKiB, disk] = (
    await machine.succeed(
      "nproc; awk '/^MemTotal:/ { print $2 }' /proc/meminfo; lsblk -bndo SIZE /dev/vda",
    )
  )
    .trim()
    .split("\n")
    .map(Number);
  return { nproc, memTotalKiB: memTotalKiB ?? 0, diskBytes: disk };
}

describe("resize", () => {
  it("hot-adds vCPUs and memory and grows the disk; refuses to shrink or pass a limit; a restart keeps it", async () => {
    const stateDir = persistentDir();
    {
      await using machine = new Machine({
        name: "grow",
        ownership: "persistent",
        stateDir,
        cpus: 1,
        maxCpus: 2,
        memoryMiB: 512,
        maxMemoryMiB: 1024,
      });
      await machine.waitForShell();
      const before = await guestView(machine);
      expect(before).toMatchObject({ nproc: 1, diskBytes: 2 * GIB });
      expect(await machine.getSize()).toEqual({
        cpus: 1,
        maxCpus: 2,
        memoryMiB: 512,
        maxMemoryMiB: 1024,
        memoryStepMiB: 128,
        diskBytes: 2 * GIB,
      });

      const size = await machine.resize({ cpus: 2, memoryMiB: 768, diskGiB: 3 });
      expect(size).toMatchObject({ cpus: 2, memoryMiB: 768, diskBytes: 3 * GIB });
      const after = await guestView(machine);
      expect(after.nproc).toBe(2);
      expect(after.memTotalKiB - before.memTotalKiB).toBeGreaterThan(250 * 1024);
      expect(after.memTotalKiB - before.memTotalKiB).toBeLessThanOrEqual(256 * 1024);
      expect(after.diskBytes).toBe(3 * GIB);

      await expect(machine.resize({ cpus: 1 })).rejects.toMatchObject({
        code: ErrorCodes.CONFLICT,
        message: "grow: resize: cpus 1 is fewer than the 2 it has: a running machine cannot shrink",
      });
      await expect(machine.resize({ memoryMiB: 1152 })).rejects.toMatchObject({
        code: ErrorCodes.CONFLICT,
        message:
          "grow: resize: memoryMiB 1152 is more than its limit, maxMemoryMiB 1024 (it has 768)",
      });
      await expect(machine.resize({ cpus: 2.5 })).rejects.toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
      });
      // Its plugged-in devices would not be restored from a snapshot; a restart makes them its own.
      await expect(machine.snapshot(join(stateDir, "snap"))).rejects.toMatchObject({
        code: ErrorCodes.CONFLICT,
        message: expect.stringContaining("the VM was resized while running"),
      });
      expect(await machine.succeed("echo still-running")).toBe("still-running\n");
    } // detached: the VM runs on

    await using attached = await Machine.attach(stateDir);
    expect(await attached.getSize()).toMatchObject({ cpus: 2, memoryMiB: 768 });
    await attached.stop();
    await attached.start();
    await attached.waitForShell();
    expect(await attached.getSize()).toEqual({
      cpus: 2,
      maxCpus: 2,
      memoryMiB: 768,
      maxMemoryMiB: 1024,
      memoryStepMiB: 128,
      diskBytes: 3 * GIB,
    });
    expect(await guestView(attached)).toMatchObject({ nproc: 2, diskBytes: 3 * GIB });
    await attached.stop();
  });

  it("adds headroom to a start script's own -smp and -m without changing them", async () => {
    const image = await findImage("debian-12");
    const dir = mkdtempSync(join(tmpdir(), "corral-resize-args-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const qemu = spawn(
      join(image.dir, image.manifest.startScript),
      [
        ...["-S", "-accel", "tcg", "-display", "none", "-qmp", "stdio"],
        ...sizeArgs({ maxCpus: 4, maxMemoryMiB: 2048 }),
      ],
      { env: { ...process.env, TMPDIR: dir, USE_TMPDIR: "1" }, stdio: ["pipe", "pipe", "inherit"] },
    );
    onTestFinished(() => {
      qemu.kill("SIGKILL");
    });
    const replies: unknown[] = [];
    let partial = "";
    const done = new Promise<void>((resolve) => {
      qemu.stdout.on("data", (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          const message = JSON.parse(line);
          if ("return" in message) replies.push(message.return);
          if (replies.length === 3) resolve();
        }
      });
    });
    for (const command of [
      { execute: "qmp_capabilities" },
      { execute: "qom-get", arguments: { path: "/machine", property: "smp" } },
      { execute: "qom-get", arguments: { path: "/machine", property: "memory" } },
    ]) {
      qemu.stdin.write(`${JSON.stringify(command)}\n`);
    }
    await done;
    qemu.stdin.end(`${JSON.stringify({ execute: "quit" })}\n`);
    expect(replies[1]).toMatchObject({ cpus: 2, maxcpus: 4 });
    expect(replies[2]).toEqual({ size: 1024 * 2 ** 20, slots: 16, "max-size": 2048 * 2 ** 20 });
  });
});
