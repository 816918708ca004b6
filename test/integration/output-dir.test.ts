// Where `corral test` writes (no VM needed): it never deletes what it did not write, checks its
// output paths before the run, and refuses an output folder that another live run uses.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  CLI,
  type CliResult,
  collect,
  isolatedRuntimeDir,
  runCli,
  startCli,
  temporaryDir,
} from "../helpers/cli.ts";

const NO_MACHINES = resolve("test/fixtures/driver/no-machines.ts");

/** Runs the CLI in folder `cwd`. */
function runIn(cwd: string, args: string[]): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...process.env, XDG_RUNTIME_DIR: isolatedRuntimeDir() },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return collect(child);
}

describe("corral test --output-dir", () => {
  it("leaves a folder it did not create untouched, whether the configuration is bad or good", async () => {
    const dir = temporaryDir("corral-out-");
    writeFileSync(join(dir, "notes.txt"), "important\n");
    const badConfig = await runIn(dir, [
      "test",
      resolve("examples/two-machines-start-scripts.ts"),
      ...["--start-scripts", "/nonexistent/run-a-vm", "--output-dir", "."],
    ]);
    expect(badConfig.stderr).toContain("start script /nonexistent/run-a-vm does not exist");
    expect(badConfig.code).toBe(2);
    expect(readdirSync(dir)).toEqual(["notes.txt"]);

    const goodConfig = await runIn(dir, ["test", NO_MACHINES, "--output-dir", "."]);
    expect(goodConfig.stderr).toContain(
      `output folder ${dir} is not empty and corral did not create it (it holds notes.txt)`,
    );
    expect(goodConfig.stderr).not.toContain("test passed");
    expect(goodConfig.code).toBe(2);
    expect(readdirSync(dir)).toEqual(["notes.txt"]);
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("important\n");
  });

  it("refuses a regular file and leaves it as it was", async () => {
    const file = join(temporaryDir("corral-out-"), "report.txt");
    writeFileSync(file, "keep me\n");
    const result = await runCli(["test", NO_MACHINES, "--output-dir", file], {
      XDG_RUNTIME_DIR: isolatedRuntimeDir(),
    });
    expect(result.stderr).toContain(`output folder ${file} is a file`);
    expect(result.code).toBe(2);
    expect(readFileSync(file, "utf8")).toBe("keep me\n");
  });

  it("reuses a folder it created: replaces what the last run left, takes over a killed run's lock", async () => {
    const out = join(temporaryDir("corral-out-"), "results", "mine");
    const env = { XDG_RUNTIME_DIR: isolatedRuntimeDir() };
    const first = await runCli(["test", NO_MACHINES, "--output-dir", out], env);
    expect(first.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual([".corral-output", "events.jsonl"]);
    // What an earlier run left: a screenshot, and the lock of a run killed with SIGKILL.
    writeFileSync(join(out, "old.png"), "png");
    mkdirSync(join(out, "shots"));
    writeFileSync(join(out, ".corral-lock"), `${deadPid()} killed\n`);
    const second = await runCli(["test", NO_MACHINES, "--output-dir", out], env);
    expect(second.stderr).toContain("test passed");
    expect(second.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual([".corral-output", "events.jsonl"]);
  });

  it("refuses a folder that a live run uses, and leaves that run's output alone", async () => {
    const base = temporaryDir("corral-out-");
    const out = join(base, "out");
    const release = join(base, "release");
    const runtimeDir = isolatedRuntimeDir();
    const running = startCli(["test", NO_MACHINES, "--output-dir", out], {
      XDG_RUNTIME_DIR: runtimeDir,
      RELEASE: release,
    });
    const firstDone = collect(running);
    for (let i = 0; i < 200 && !existsSync(join(out, "events.jsonl")); i++) await sleep(50);
    const second = await runCli(["test", NO_MACHINES, "--output-dir", out], {
      XDG_RUNTIME_DIR: runtimeDir,
    });
    expect(second.stderr).toContain(
      `output folder ${out} is in use by another corral run (pid ${running.pid})`,
    );
    expect(second.code).toBe(2);
    writeFileSync(release, "");
    const first = await firstDone;
    expect(first.code).toBe(0);
    const events = readFileSync(join(out, "events.jsonl"), "utf8").trim().split("\n");
    expect(JSON.parse(events.at(-2) ?? "{}")).toMatchObject({ type: "result", ok: true });
  });

  it("fails at once with exit 2 for a folder that cannot be created (/proc/nope)", async () => {
    const result = await runCli(["test", NO_MACHINES, "--output-dir", "/proc/nope"], {
      XDG_RUNTIME_DIR: isolatedRuntimeDir(),
    });
    expect(result.stderr).toContain("output folder /proc/nope cannot be created");
    expect(result.code).toBe(2);
  }, 20_000);

  it("refuses a JUnit path that is a folder before the test runs", async () => {
    const base = temporaryDir("corral-out-");
    const result = await runCli(
      ["test", NO_MACHINES, "--output-dir", join(base, "out"), "--junit-xml", base],
      { XDG_RUNTIME_DIR: isolatedRuntimeDir() },
    );
    expect(result.stderr).toContain(`JUnit report ${base} is a folder`);
    expect(result.stderr).not.toContain("test passed");
    expect(result.code).toBe(2);
    expect(existsSync(join(base, "out"))).toBe(false);
  });
});

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  return spawnSync("true").pid ?? 0;
}
