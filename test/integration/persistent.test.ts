// Persistent machines: their VMM outlives the corral process that started it, another process
// attaches to it (commands, copies, snapshots), and stop() ends it. Also what attach says when
// the VMM has died, and the lifecycle's refusals.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, Machine } from "corral";
import { describe, expect, it, onTestFinished } from "vitest";
import { processesMentioning, temporaryDir } from "../helpers/cli.ts";

const START = new URL("../fixtures/persistent/start.ts", import.meta.url).pathname;

function vmPid(stateDir: string): number {
  return JSON.parse(readFileSync(join(stateDir, "vm.json"), "utf8")).pid;
}

/** A state folder whose persistent VM, if a failed test leaves one running, is killed after it. */
function persistentDir(): string {
  const stateDir = mkdtempSync(join(tmpdir(), "corral-persistent-"));
  onTestFinished(() => {
    try {
      if (existsSync(join(stateDir, "vm.json"))) process.kill(vmPid(stateDir), "SIGKILL");
    } catch {
      // already gone
    }
    rmSync(stateDir, { recursive: true, force: true });
  });
  return stateDir;
}

/** Starts a persistent VM in `stateDir` from a process of its own, which exits. */
async function startInAnotherProcess(stateDir: string): Promise<void> {
  const child = spawn(process.execPath, [START, stateDir], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = await once(child, "exit");
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
}

describe("a persistent machine", () => {
  it("outlives the process that started it; another attaches, works with it and stops it", async () => {
    const stateDir = persistentDir();
    await startInAnotherProcess(stateDir);
    const pid = vmPid(stateDir);
    expect(processesMentioning(stateDir).some((line) => line.startsWith(`${pid} `))).toBe(true);

    await using machine = await Machine.attach(stateDir);
    expect(machine.name).toBe("keeper");
    expect(machine.state).toBe("running");
    expect(await machine.succeed("cat /root/marker")).toMatch(/^started-by-\d+\n$/);
    expect(machine.consoleLines).toContain("connecting to host...");

    const source = join(temporaryDir("corral-copy-"), "data.bin");
    writeFileSync(source, Buffer.alloc(100_000, 7));
    await machine.copyFromHost(source, "/root/data.bin");
    const sha256 = createHash("sha256").update(readFileSync(source)).digest("hex");
    expect(await machine.succeed("sha256sum /root/data.bin")).toBe(`${sha256}  /root/data.bin\n`);

    const snapshot = join(temporaryDir("corral-persistent-snap-"), "snap");
    await machine.snapshot(snapshot);
    // Its RAM is a shared memfd: a memory file beside a state stream without it.
    expect(readdirSync(snapshot).sort()).toEqual([
      "disk-overlay.qcow2",
      "disk.qcow2",
      "manifest.json",
      "memory",
      "state",
    ]);
    expect(await machine.succeed("echo after-snapshot")).toBe("after-snapshot\n");

    await machine.stop();
    expect(machine.state).toBe("stopped");
    expect(processesMentioning(stateDir)).toEqual([]);
    expect(existsSync(join(stateDir, "vm.json"))).toBe(false);
  });

  it("is waited for when a command was in flight as its last process let go", async () => {
    const stateDir = persistentDir();
    {
      await using first = new Machine({ name: "busy", ownership: "persistent", stateDir });
      await first.waitForShell();
      const aborted = new AbortController();
      const pending = first.execute("sleep 3; echo late-output", { signal: aborted.signal });
      setTimeout(() => aborted.abort(), 500);
      await expect(pending).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
    }
    await using again = await Machine.attach(stateDir);
    expect(await again.execute("echo fresh")).toEqual({
      exitCode: 0,
      stdout: "fresh\n",
      stderr: "",
    });
    await again.stop();
  });

  it("says so when its VMM has died, removes the stale record and sockets, and keeps the disk", async () => {
    const stateDir = persistentDir();
    // Started by a process that has gone: one still holding the VM would see it die and clean up
    // before Machine.attach could.
    await startInAnotherProcess(stateDir);
    process.kill(vmPid(stateDir), "SIGKILL");
    await expect.poll(() => processesMentioning(stateDir)).toEqual([]);
    await expect(Machine.attach(stateDir)).rejects.toMatchObject({
      code: ErrorCodes.MACHINE_EXITED,
      message: expect.stringMatching(
        /cannot attach to the VM in .*: its qemu process \(pid \d+\) has exited/,
      ),
    });
    const left = readdirSync(stateDir);
    expect(left).not.toContain("vm.json");
    expect(left.filter((name) => name.endsWith(".sock"))).toEqual([]);
    expect(left).toContain("debian-12.qcow2");
    await expect(Machine.attach(stateDir)).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });

  it("pauses and resumes, and refuses what its state does not allow", async () => {
    const stateDir = persistentDir();
    await using machine = new Machine({ name: "pausable", ownership: "persistent", stateDir });
    await machine.waitForShell();
    await machine.pause();
    expect(machine.state).toBe("paused");
    await expect(machine.execute("true")).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("not allowed while the machine is paused"),
    });
    await machine.resume();
    expect(await machine.succeed("echo back")).toBe("back\n");
    await machine.stop();
    await expect(machine.pause()).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: "pausable: pause(): not allowed while the machine is stopped (allowed when running)",
    });
  });

  it("needs a state folder to be found again by", () => {
    expect(() => new Machine({ ownership: "persistent" })).toThrowError(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
    );
  });
});
