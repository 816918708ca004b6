import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DriverLog } from "../../../src/driver/driver-log.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-log-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function terminal(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { stream, text: () => text };
}

describe("DriverLog", () => {
  it("nests steps per async context, so parallel steps each know where they are", async () => {
    const { stream, text } = terminal();
    const log = new DriverLog({ terminal: stream, outputDir: dir });
    let seen: string[] = [];
    const { promise: bothStarted, resolve } = Promise.withResolvers<void>();
    let started = 0;
    const inner = (name: string) =>
      log.step(
        "wait",
        async () => {
          started++;
          if (started === 2) resolve();
          await bothStarted;
          seen = log.openSteps;
        },
        name,
      );
    await log.step("subtest: both", () => Promise.all([inner("a"), inner("b")]));
    expect(seen.sort()).toEqual(["subtest: both > a: wait", "subtest: both > b: wait"]);
    expect(log.openSteps).toEqual([]);
    const lines = text().split("\n");
    expect(lines.slice(0, 3)).toEqual(["subtest: both", "  a: wait", "  b: wait"]);
    expect(lines.filter((line) => /^ {4}\(ok in/.test(line))).toHaveLength(2);
    expect(lines.at(-2)).toMatch(/^ {2}\(ok in \d+ ms\)$/);
    await log.close();
  });

  it("writes events.jsonl and each machine's console log; serialStdout(false) hides console lines", async () => {
    const { stream, text } = terminal();
    const log = new DriverLog({ terminal: stream, outputDir: dir });
    log.console("server", "first line");
    log.serialStdout = false;
    log.console("server", "second line");
    await expect(log.step("boom", () => Promise.reject(new Error("it broke")))).rejects.toThrow();
    log.result(false, 12, "it broke");
    await log.close();
    expect(text()).toContain("server # first line");
    expect(text()).not.toContain("second line");
    expect(text()).toMatch(/\(failed in \d+ ms\)/);
    expect(await readFile(join(dir, "server.console.log"), "utf8")).toBe(
      "first line\nsecond line\n",
    );
    const events = (await readFile(join(dir, "events.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events.map((event) => event.type)).toEqual([
      "console",
      "console",
      "step-start",
      "step-end",
      "result",
    ]);
    expect(events[3]).toMatchObject({ title: "boom", ok: false, error: "it broke" });
    expect(typeof events[0]?.time).toBe("string");
  });

  it("drops what a step still running writes after close(), instead of writing after the end", async () => {
    const { stream, text } = terminal();
    const log = new DriverLog({ terminal: stream, outputDir: dir });
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    const late = log.step("left running", () => released, "a");
    log.log("test failed");
    await log.close();
    release();
    await late;
    log.console("a", "late console line");
    log.log("late line");
    // A write after the end would surface here, as an uncaught ERR_STREAM_WRITE_AFTER_END.
    await new Promise((resolve) => setImmediate(resolve));
    expect(text().trim().split("\n").at(-1)).toBe("test failed");
    const events = await readFile(join(dir, "events.jsonl"), "utf8");
    expect(
      events
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).type),
    ).toEqual(["step-start", "log"]);
  });
});
