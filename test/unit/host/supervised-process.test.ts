import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SupervisedProcess } from "../../../src/host/supervised-process.ts";

function isGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (condition()) return true;
    await sleep(50);
  }
  return condition();
}

describe("SupervisedProcess", () => {
  it("stop() ends the whole process group, children included", async () => {
    const proc = await SupervisedProcess.spawn("sh", ["-c", "sleep 100 & sleep 100"]);
    expect(isGroupAlive(proc.pid)).toBe(true);
    const info = await proc.stop();
    expect(info.signal).toBe("SIGTERM");
    expect(await waitUntil(() => !isGroupAlive(proc.pid), 2000)).toBe(true);
  });

  it("escalates to SIGKILL when SIGTERM is ignored", async () => {
    const proc = await SupervisedProcess.spawn("sh", ["-c", "trap '' TERM; sleep 100"]);
    await sleep(100);
    const info = await proc.stop(200);
    expect(info.signal).toBe("SIGKILL");
  });

  it("kills the group when the leader exits on its own and leaves a child behind", async () => {
    const proc = await SupervisedProcess.spawn("sh", ["-c", "sleep 100 & exit 0"]);
    expect((await proc.exited).code).toBe(0);
    expect(await waitUntil(() => !isGroupAlive(proc.pid), 2000)).toBe(true);
  });

  it("leaves nothing behind when the corral process is killed with SIGKILL", async () => {
    const owner = spawn(
      process.execPath,
      [fileURLToPath(new URL("../../helpers/supervise-sleeper.ts", import.meta.url))],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await once(createInterface({ input: owner.stdout }), "line")) as [string];
    const pgid = Number(line);
    expect(isGroupAlive(pgid)).toBe(true);
    owner.kill("SIGKILL");
    expect(await waitUntil(() => !isGroupAlive(pgid), 5000)).toBe(true);
  });
});
