// Resizing a machine: what may grow and what is refused, and the guest-side measuring script,
// run here in the host's bash against the host's own /proc and /sys.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { VmSize } from "../../../src/backends/backend.ts";
import { ErrorCodes } from "../../../src/errors.ts";
import { guestSizeCommand, parseGuestSize, planResize } from "../../../src/machine/resize.ts";

const GIB = 2 ** 30;
const current: VmSize = {
  cpus: 1,
  maxCpus: 2,
  memoryMiB: 512,
  maxMemoryMiB: 1024,
  memoryStepMiB: 128,
  diskBytes: 2 * GIB,
};
const headroom = { maxCpus: 2, maxMemoryMiB: 1024 };

/** The error planResize throws, as code and message. */
function refusal(target: unknown, startedWith = headroom): { code: string; message: string } {
  try {
    planResize("web", current, target as never, startedWith);
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message };
  }
  throw new Error(`planResize accepted ${JSON.stringify(target)}`);
}

describe("planResize", () => {
  it("keeps what grows and drops what stays", () => {
    expect(planResize("web", current, { cpus: 2, memoryMiB: 768, diskGiB: 3 }, headroom)).toEqual({
      cpus: 2,
      memoryMiB: 768,
      diskGiB: 3,
    });
    expect(planResize("web", current, { cpus: 1, memoryMiB: 512, diskGiB: 2 }, headroom)).toEqual(
      {},
    );
    expect(planResize("web", current, { memoryMiB: 1024 }, headroom)).toEqual({ memoryMiB: 1024 });
  });

  it.each([
    [{ cpus: 0 }, "cpus is 0; expected a whole number from 1 to 255"],
    [{ memoryMiB: 600.5 }, "memoryMiB is 600.5; expected a whole number of MiB from 64 to 524288"],
    [{ diskGiB: -1 }, "diskGiB is -1; expected a whole number of GiB from 1 to 65536"],
    [{ disk: 3 }, 'unknown field "disk"; fields: cpus, memoryMiB, diskGiB'],
    [{}, "give at least one of cpus, memoryMiB and diskGiB"],
    [
      { memoryMiB: 600 },
      "memoryMiB 600 would add 88 MiB to the 512 it has; memory grows in whole steps of 128 MiB",
    ],
  ])("refuses %j as an invalid argument", (target, message) => {
    expect(refusal(target)).toEqual({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `web: resize: ${message}`,
    });
  });

  it.each([
    [{ cpus: 3 }, "cpus 3 is more than its limit, maxCpus 2 (it has 1)"],
    [{ memoryMiB: 2048 }, "memoryMiB 2048 is more than its limit, maxMemoryMiB 1024 (it has 512)"],
    [{ diskGiB: 1 }, "diskGiB 1 is less than the 2 GiB its disk has: a disk cannot shrink"],
  ])("refuses %j as a conflict naming the limit and the current value", (target, message) => {
    expect(refusal(target)).toEqual({
      code: ErrorCodes.CONFLICT,
      message: `web: resize: ${message}`,
    });
  });

  it("refuses to shrink a running machine", () => {
    const bigger = { ...current, cpus: 2, memoryMiB: 768 };
    expect(() => planResize("web", bigger, { cpus: 1 }, headroom)).toThrowError(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: "web: resize: cpus 1 is fewer than the 2 it has: a running machine cannot shrink",
      }),
    );
    expect(() => planResize("web", bigger, { memoryMiB: 512 }, headroom)).toThrowError(
      "memoryMiB 512 is less than the 768 MiB it has: a running machine cannot shrink",
    );
  });

  it("says that a machine started without headroom cannot grow", () => {
    const fixed = { ...current, maxCpus: 1, maxMemoryMiB: 512 };
    expect(() => planResize("web", fixed, { cpus: 2 })).toThrowError(
      "web: resize: cpus 2 is more than its limit, maxCpus 1 (it has 1); it was started without maxCpus, and only a machine started with headroom can grow",
    );
    expect(() => planResize("web", fixed, { memoryMiB: 640 })).toThrowError(
      "it was started without maxMemoryMiB, and only a machine started with headroom can grow",
    );
  });
});

describe("guestSizeCommand", () => {
  const bash = (script: string) =>
    execFileSync("bash", ["-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const onlineCpus = Number(execFileSync("getconf", ["_NPROCESSORS_ONLN"], { encoding: "utf8" }));
  const memTotalKiB = Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1]);

  it("reads online CPUs, MemTotal and the root disk with bash builtins", () => {
    const seen = parseGuestSize(bash(guestSizeCommand()));
    expect(seen).toMatchObject({ cpus: onlineCpus, memTotalKiB });
    expect(seen?.diskBytes).toBeGreaterThanOrEqual(0);
  });

  it("succeeds only once the guest sees at least what is asked", () => {
    const enough = { cpus: onlineCpus, memTotalKiB, diskBytes: 0 };
    expect(() => bash(guestSizeCommand(enough))).not.toThrow();
    for (const more of [
      { ...enough, cpus: enough.cpus + 1 },
      { ...enough, memTotalKiB: memTotalKiB + 1 },
      { ...enough, diskBytes: 2 ** 60 },
    ]) {
      expect(() => bash(guestSizeCommand(more))).toThrow();
    }
  });

  it("parses what it printed, and nothing else", () => {
    expect(parseGuestSize("cpus 2, MemTotal 675832 kB, disk 3221225472 bytes\n")).toEqual({
      cpus: 2,
      memTotalKiB: 675832,
      diskBytes: 3 * GIB,
    });
    expect(parseGuestSize("bash: nproc: command not found")).toBeUndefined();
  });
});
