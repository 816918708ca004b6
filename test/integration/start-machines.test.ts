// startMachines' signal (what vitest aborts when a test times out): it stops the machines at
// once, whatever they are doing, and fails their pending and later verbs with CORRAL_ABORTED.

import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { AbortedError, ErrorCodes, startMachines } from "corral";
import { describe, expect, it } from "vitest";
import { processesMentioning } from "../helpers/cli.ts";

async function expectGone(stateDir: string): Promise<void> {
  for (
    let i = 0;
    i < 100 && (processesMentioning(stateDir).length > 0 || existsSync(stateDir));
    i++
  )
    await sleep(100);
  expect(processesMentioning(stateDir)).toEqual([]);
  expect(existsSync(stateDir)).toBe(false);
}

describe("startMachines({ signal })", () => {
  it("stops the machines when the signal fires; pending and later verbs fail with CORRAL_ABORTED", async () => {
    const controller = new AbortController();
    await using vms = await startMachines({ solo: { vlans: [] } }, { signal: controller.signal });
    await vms.solo.waitForShell();
    const stateDir = vms.solo.stateDir ?? "";
    expect(processesMentioning(stateDir)).not.toEqual([]);
    const pending = vms.solo.waitForFile("/never", { timeout: 120_000 }).catch((e: unknown) => e);
    await sleep(500);
    const started = performance.now();
    controller.abort(new Error("the test timed out"));
    const error = await pending;
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error).toBeInstanceOf(AbortedError);
    expect(error).toMatchObject({
      code: ErrorCodes.ABORTED,
      message: "startMachines: the signal was aborted",
    });
    expect((error as Error).cause).toEqual(new Error("the test timed out"));
    await expectGone(stateDir);
    await expect(vms.solo.succeed("true")).rejects.toMatchObject({
      code: ErrorCodes.ABORTED,
      message:
        "solo: succeed: not run: the test has stopped: startMachines: the signal was aborted",
      cause: error,
    });
  });

  it("starts nothing when the signal has fired already", async () => {
    const started = startMachines({ solo: { vlans: [] } }, { signal: AbortSignal.abort() });
    const outcome = await started.then(
      async (vms) => {
        await vms[Symbol.asyncDispose]();
        return "started";
      },
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(AbortedError);
  });
});
