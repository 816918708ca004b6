import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { DetachedProcess, isRunning } from "../../../src/host/detached-process.ts";

describe("DetachedProcess", () => {
  it("runs in a session of its own and is found again by pid and start time", async () => {
    const started = await DetachedProcess.spawn("sleep", ["30"], {
      stdio: ["ignore", "ignore", "ignore"],
    });
    try {
      const session = spawnSync("ps", ["-o", "sid=", "-p", String(started.pid)], {
        encoding: "utf8",
      });
      expect(Number(session.stdout.trim())).toBe(started.pid);
      expect(isRunning(started.identity)).toBe(true);
      const found = DetachedProcess.find(started.identity);
      expect(found?.pid).toBe(started.pid);
      await found?.stop();
      expect(isRunning(started.identity)).toBe(false);
      await expect(started.exited).resolves.toEqual({ code: null, signal: "SIGTERM" });
    } finally {
      started.kill("SIGKILL");
    }
  });

  it("does not take another process that got the same pid for it", async () => {
    const started = await DetachedProcess.spawn("sleep", ["30"], {
      stdio: ["ignore", "ignore", "ignore"],
    });
    try {
      const other = { pid: started.pid, startTime: started.identity.startTime + 1 };
      expect(isRunning(other)).toBe(false);
      expect(DetachedProcess.find(other)).toBeUndefined();
    } finally {
      await started.stop();
    }
  });
});
