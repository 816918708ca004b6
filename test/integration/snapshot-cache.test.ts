// The boot snapshot cache of `corral test --reuse-boot`, in a cache folder of the test's own (the
// image cache linked into it): a run killed while it saves leaves no partial snapshot, two first
// runs at once both pass, and `corral snapshot rm` checks its arguments and removes the partial
// snapshots of dead runs.

import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { imagesDir } from "../../src/host/paths.ts";
import {
  collect,
  isolatedRuntimeDir,
  processesMentioning,
  runCli,
  startCli,
  temporaryDir,
} from "../helpers/cli.ts";

const FIXTURE = "test/fixtures/driver/reuse-boot.ts";

/** An XDG_CACHE_HOME whose snapshot cache is empty and whose image cache is the shared one. */
function isolatedCacheHome(): string {
  const home = temporaryDir("corral-test-cache-");
  mkdirSync(join(home, "corral"));
  symlinkSync(imagesDir(), join(home, "corral", "images"));
  return home;
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  return spawnSync("true").pid ?? 0;
}

async function expectNothingLeft(runtimeDir: string): Promise<void> {
  for (let i = 0; i < 50 && processesMentioning(runtimeDir).length > 0; i++) await sleep(100);
  expect(processesMentioning(runtimeDir)).toEqual([]);
  expect(readdirSync(runtimeDir)).toEqual([]);
}

describe("the boot snapshot cache", () => {
  it("keeps no partial snapshot of a run killed with SIGKILL while it saves", async () => {
    const cacheHome = isolatedCacheHome();
    const snapshots = join(cacheHome, "corral", "snapshots");
    const runtimeDir = isolatedRuntimeDir();
    const child = startCli(["test", FIXTURE, "--output-dir", temporaryDir("out-")], {
      XDG_CACHE_HOME: cacheHome,
      XDG_RUNTIME_DIR: runtimeDir,
    });
    const done = collect(child);
    let partial: string | undefined;
    for (let i = 0; i < 9000 && !partial && child.exitCode === null; i++) {
      partial = entries(snapshots).find((name) => name.includes(".partial-"));
      if (!partial) await sleep(20);
    }
    expect(partial).toMatch(/^\.cached-[0-9a-f]{16}\.partial-/);
    child.kill("SIGKILL");
    await done;
    for (let i = 0; i < 100 && entries(snapshots).length > 0; i++) await sleep(100);
    expect(entries(snapshots)).toEqual([]);
    await expectNothingLeft(runtimeDir);
    // The partial folder names its writer, so that a later save or `snapshot rm --all` can tell
    // a dead run's partial from a live one's.
    expect(partial).toMatch(new RegExp(`-${child.pid}$`));
  }, 300_000);

  it("lets two first runs at once both pass, the second to save keeping the first's snapshot", async () => {
    const cacheHome = isolatedCacheHome();
    const snapshots = join(cacheHome, "corral", "snapshots");
    mkdirSync(snapshots);
    const killedRun = `.cached-0123456789abcdef.partial-c0ffee-${deadPid()}`;
    mkdirSync(join(snapshots, killedRun));
    const runtimeDirs = [isolatedRuntimeDir(), isolatedRuntimeDir()];
    const runs = runtimeDirs.map((runtimeDir) =>
      collect(
        startCli(["test", FIXTURE, "--output-dir", temporaryDir("out-")], {
          XDG_CACHE_HOME: cacheHome,
          XDG_RUNTIME_DIR: runtimeDir,
        }),
      ),
    );
    const results = await Promise.all(runs);
    for (const result of results) {
      expect(result.stderr).toContain("test passed");
      expect(result.code).toBe(0);
    }
    const stderr = results.map((result) => result.stderr).join("");
    expect(stderr.match(/another run saved this boot snapshot first/g)).toHaveLength(1);
    expect(entries(snapshots)).toEqual([expect.stringMatching(/^cached-[0-9a-f]{16}$/)]);
    for (const runtimeDir of runtimeDirs) await expectNothingLeft(runtimeDir);

    const env = { XDG_CACHE_HOME: cacheHome };
    const [entry] = entries(snapshots);
    mkdirSync(join(snapshots, killedRun));
    const liveRun = `.cached-0123456789abcdef.partial-c0ffee-${process.pid}`;
    mkdirSync(join(snapshots, liveRun));
    for (const [args, message] of [
      [["../../etc"], /"\.\.\/\.\.\/etc" is neither a machine name .* nor a snapshot name/],
      [["--all", "extra"], /give either a machine name or --all/],
      [[], /give either a machine name or --all/],
    ] as const) {
      const refused = await runCli(["snapshot", "rm", ...args], env);
      expect(refused.stderr).toMatch(message);
      expect(refused.code).toBe(2);
    }
    expect(entries(snapshots)).toEqual([killedRun, liveRun, entry].sort());
    const removed = await runCli(["snapshot", "rm", "--all"], env);
    expect(removed.code).toBe(0);
    expect(removed.stdout.trim().split("\n").sort()).toEqual(
      [`removed ${entry}`, `removed ${killedRun}`].sort(),
    );
    expect(entries(snapshots)).toEqual([liveRun]);
  }, 300_000);
});
