import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
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

  // The main thread ends (pthread_exit) while another runs 1.5 s more: the leader is a zombie and
  // the process still holds its files, as a killed QEMU whose vCPU thread has yet to exit.
  it.skipIf(spawnSync("python3", ["--version"]).status !== 0)(
    "stops running when it begins to exit, and has exited once its last thread has",
    async () => {
      const script = [
        "import ctypes, threading, time",
        "threading.Thread(target=lambda: time.sleep(1.5)).start()",
        "time.sleep(0.3)",
        "ctypes.CDLL(None).pthread_exit(None)",
      ].join("\n");
      const started = await DetachedProcess.spawn("python3", ["-c", script], {
        stdio: ["ignore", "ignore", "ignore"],
      });
      try {
        const found = DetachedProcess.find(started.identity);
        expect(found).toBeDefined();
        let hasExited = false;
        void found?.exited.then(() => {
          hasExited = true;
        });
        await vi.waitFor(() => expect(isRunning(started.identity)).toBe(false), { timeout: 5000 });
        const status = readFileSync(`/proc/${started.pid}/status`, "utf8");
        expect(Number(/^Threads:\s*(\d+)/m.exec(status)?.[1])).toBeGreaterThan(1);
        await sleep(200);
        expect(hasExited).toBe(false);
        await found?.exited;
        expect(() => readFileSync(`/proc/${started.pid}/status`)).toThrow();
      } finally {
        started.kill("SIGKILL");
      }
    },
  );
});
