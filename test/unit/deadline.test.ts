import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  Deadline,
  MAX_TIMER_MS,
  requireTimeout,
  setLongTimeout,
  timeoutSignal,
} from "../../src/deadline.ts";
import { ErrorCodes } from "../../src/errors.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("Deadline", () => {
  it.each([
    ["just past the timer limit", MAX_TIMER_MS + 1],
    ["past the 32-bit limit", 2 ** 32 + 100],
    ["1e9 seconds", 1e12],
    ["3e12 ms", 3e12],
    ["Infinity", Number.POSITIVE_INFINITY],
  ])("takes a huge timeout (%s) without firing early", async (_name, timeout) => {
    const deadline = new Deadline("wait", { timeout }, 0);
    await sleep(50);
    expect(deadline.signal.aborted).toBe(false);
    expect(deadline.remainingMs).toBeGreaterThan(MAX_TIMER_MS - 1000);
  });

  it("still fires a short timeout, and the caller's signal", async () => {
    const short = new Deadline("short", { timeout: 20 }, 0);
    await sleep(80);
    expect(short.signal.aborted).toBe(true);
    expect(short.error().code).toBe(ErrorCodes.TIMEOUT);

    const controller = new AbortController();
    const endless = new Deadline("endless", { timeout: Infinity, signal: controller.signal }, 0);
    controller.abort();
    expect(endless.signal.aborted).toBe(true);
    expect(endless.error().code).toBe(ErrorCodes.ABORTED);
  });

  it.each([-1, Number.NaN, Number.NEGATIVE_INFINITY, "5000"])(
    "refuses the timeout %s with CORRAL_INVALID_ARGUMENT",
    (timeout) => {
      expect(() => new Deadline("m: wait", { timeout: timeout as number }, 0)).toThrow(
        expect.objectContaining({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: expect.stringMatching(/^m: wait: a timeout must be a number of milliseconds/),
        }),
      );
    },
  );

  it("uses the default when no timeout is given", () => {
    expect(new Deadline("wait", {}, 1234).timeoutMs).toBe(1234);
    expect(requireTimeout(0, "zero")).toBe(0);
  });
});

describe("setLongTimeout and timeoutSignal", () => {
  it("wait out a delay longer than Node's timers hold, in chunks", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const delay = 3 * MAX_TIMER_MS + 5;
    const fired = vi.fn();
    setLongTimeout(fired, delay);
    const signal = timeoutSignal(delay);
    vi.advanceTimersByTime(delay - 1);
    expect(fired).not.toHaveBeenCalled();
    expect(signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledOnce();
    expect(signal.aborted).toBe(true);
    expect((signal.reason as DOMException).name).toBe("TimeoutError");
  });

  it("never fire for Infinity, and not once cancelled", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const never = vi.fn();
    const cancelled = vi.fn();
    setLongTimeout(never, Number.POSITIVE_INFINITY);
    const signal = timeoutSignal(Number.POSITIVE_INFINITY);
    const cancel = setLongTimeout(cancelled, 2 * MAX_TIMER_MS);
    vi.advanceTimersByTime(MAX_TIMER_MS + 10);
    cancel();
    vi.advanceTimersByTime(10 * MAX_TIMER_MS);
    expect(never).not.toHaveBeenCalled();
    expect(cancelled).not.toHaveBeenCalled();
    expect(signal.aborted).toBe(false);
  });

  it("call back asynchronously even for 0 ms", async () => {
    const order: string[] = [];
    setLongTimeout(() => order.push("timer"), 0);
    order.push("after");
    await sleep(10);
    expect(order).toEqual(["after", "timer"]);
  });
});

describe("a deadline that travels", () => {
  it("is passed on as the object, not wrapped in a new one", () => {
    const deadline = new Deadline("vm: copyFromHost(/a, /b)", { timeout: 1000 }, 5000);
    expect(Deadline.of(deadline, "vm: execute(cp …)", 900_000)).toBe(deadline);
    expect(Deadline.of({ timeout: 20 }, "QMP stop", 30_000).what).toBe("QMP stop");
  });

  it("fails deep down as a timeout of the verb the user called, with its call log and description", async () => {
    const deadline = new Deadline("vm: copyFromHost(/a, /b)", { timeout: 50 }, 5000).describeWith(
      "vm",
      () => ["Last 1 console lines:", "  | booted"],
    );
    deadline.step("guest: mkdir -p /b's folder");
    // A layer below races its own work against the deadline it was given.
    const deep = (given: Deadline) => Deadline.of(given, "vm: execute(head -c …)", 900_000);
    const failure = deep(deadline).race(new Promise(() => {}));
    await expect(failure).rejects.toMatchObject({
      code: ErrorCodes.TIMEOUT,
      machine: "vm",
      message: expect.stringMatching(
        /^vm: copyFromHost\(\/a, \/b\): timed out after 50 ms\nCall log:\n +\d+ ms {2}guest: mkdir -p \/b's folder\nLast 1 console lines:\n {2}\| booted$/,
      ),
    });
  });

  it("says the caller aborted when its signal fired, naming the same verb", async () => {
    const caller = new AbortController();
    const deadline = new Deadline("vm: waitForUnit(nginx)", { signal: caller.signal }, 5000);
    const waiting = deadline.race(new Promise(() => {}));
    caller.abort(new Error("test over"));
    await expect(waiting).rejects.toMatchObject({
      code: ErrorCodes.ABORTED,
      message: expect.stringMatching(/^vm: waitForUnit\(nginx\): aborted after \d+ ms$/),
    });
  });
});
