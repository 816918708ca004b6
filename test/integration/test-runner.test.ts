// `corral test` over a folder of test files: six small files (two boot one VM each, one fails,
// one times out) run --jobs 2 in one process, and as CI shards 1/2 and 2/2 in two processes at
// once on the same runtime folder; the right files run, the summary and the merged JUnit say
// what happened, nothing is left running, and the exit status is 1.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeBootSnapshots } from "../../src/driver/boot-snapshots.ts";
import { isolatedRuntimeDir, processesMentioning, runCli, temporaryDir } from "../helpers/cli.ts";

const FIXTURES = "test/fixtures/runner";
const ALL = ["echo", "fails", "hangs", "plain", "quick", "sub/web"];
const forgetBoot = () => removeBootSnapshots("runnervm");

async function expectNothingLeft(runtimeDir: string): Promise<void> {
  for (let i = 0; i < 50 && processesMentioning(runtimeDir).length > 0; i++) await sleep(100);
  expect(processesMentioning(runtimeDir)).toEqual([]);
  expect(readdirSync(runtimeDir)).toEqual([]);
}

/** The summary table on stdout: test name → status. */
function summary(stdout: string): Record<string, string> {
  const rows = stdout.trim().split("\n").slice(0, -1);
  return Object.fromEntries(
    rows.map((row) => {
      const [status, name] = row.split(/ {2,}/).filter((_, column) => column !== 1);
      return [name, status];
    }),
  );
}

/** JUnit suites → their cases, failed or not. */
function junitSuites(xml: string): Record<string, string[]> {
  const suites: Record<string, string[]> = {};
  for (const [, name, body] of xml.matchAll(
    /<testsuite name="([^"]*)"[^>]*>([\s\S]*?)<\/testsuite>/g,
  )) {
    suites[name ?? ""] = [
      ...(body ?? "").matchAll(/<testcase [^>]*name="([^"]*)"[^>]*?(\/>|>\s*<failure)/g),
    ].map((match) => `${match[2] === "/>" ? "ok" : "FAILED"} ${match[1]}`);
  }
  return suites;
}

const EXPECTED_SUITES: Record<string, string[]> = {
  echo: ["ok the guest echoes"],
  fails: ["ok one is one", "FAILED two is three"],
  hangs: ["FAILED hangs.vm.ts"],
  plain: ["ok first", "ok second"],
  quick: ["ok quick.vm.ts"],
  "sub/web": ["ok the guest has a shell"],
};
const EXPECTED_STATUS: Record<string, string> = {
  echo: "passed",
  fails: "failed",
  hangs: "timed out",
  plain: "passed",
  quick: "passed",
  "sub/web": "passed",
};
const pick = <T>(record: Record<string, T>, names: string[]) =>
  Object.fromEntries(names.map((name) => [name, record[name]]));

describe("corral test over a folder", () => {
  beforeAll(async () => {
    await forgetBoot();
  });
  afterAll(async () => {
    await forgetBoot();
  });

  it("runs two CI shards in two processes at once: disjoint, covering, one boot snapshot saved", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const out = temporaryDir("corral-runner-out-");
    const shard = (index: number) =>
      runCli(
        [
          ...["test", FIXTURES, "--shard", `${index}/2`, "--reuse-boot"],
          ...["--output-dir", out, "--junit-xml", join(out, `junit-${index}.xml`)],
        ],
        { XDG_RUNTIME_DIR: runtimeDir },
      );
    const [first, second] = await Promise.all([shard(1), shard(2)]);
    expect(first.code).toBe(1);
    expect(second.code).toBe(1);
    const shards = [
      { result: first, names: ["echo", "hangs", "quick"] },
      { result: second, names: ["fails", "plain", "sub/web"] },
    ];
    for (const [index, { result, names }] of shards.entries()) {
      expect(summary(result.stdout)).toEqual(pick(EXPECTED_STATUS, names));
      const xml = readFileSync(join(out, `junit-${index + 1}.xml`), "utf8");
      expect(junitSuites(xml)).toEqual(pick(EXPECTED_SUITES, names));
    }
    // Both booted the same machine; exactly one saved its boot snapshot, the other kept going.
    const stderr = first.stderr + second.stderr;
    expect(stderr.match(/another run saved this boot snapshot first/g)).toHaveLength(1);
    expect((await runCli(["snapshot", "list"])).stdout).toMatch(/^runnervm-[0-9a-f]{16} /m);
    await expectNothingLeft(runtimeDir);
  });

  it("runs every *.vm.ts file --jobs 2 at a time: summary, merged JUnit, exit 1", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const out = temporaryDir("corral-runner-out-");
    const junit = join(out, "junit.xml");
    const result = await runCli(
      [
        ...["test", FIXTURES, "--jobs", "2", "--reuse-boot"],
        ...["--output-dir", join(out, "results"), "--junit-xml", junit],
      ],
      { XDG_RUNTIME_DIR: runtimeDir },
    );
    expect(result.code).toBe(1);
    expect(summary(result.stdout)).toEqual(EXPECTED_STATUS);
    expect(result.stdout.trim().split("\n").at(-1)).toMatch(
      /^6 tests: 4 passed, 1 failed, 1 timed out in \d/,
    );
    expect(result.stdout).toMatch(/^passed +\S+( s| ms) +sub\/web +\/\S+\/results\/sub\/web$/m);
    const xml = readFileSync(junit, "utf8");
    expect(xml).toMatch(/^<\?xml[^\n]*\n<testsuites tests="8" failures="2"/);
    expect(junitSuites(xml)).toEqual(EXPECTED_SUITES);
    // Each test's lines carry its name; both VMs restored the snapshot the shards saved.
    expect(result.stderr).toContain("[plain]   plain: first");
    expect(result.stderr).toMatch(/\[echo\] runnervm: restores its boot snapshot/);
    expect(result.stderr).toMatch(/\[sub\/web\] runnervm: restores its boot snapshot/);
    expect(result.stderr).not.toContain("must not be loaded");
    for (const name of ALL) {
      expect(existsSync(join(out, "results", name, "events.jsonl"))).toBe(true);
    }
    await expectNothingLeft(runtimeDir);
  });

  it("refuses a single test's flags for a folder, and --grep matching nothing, with exit 2", async () => {
    const withScripts = await runCli(["test", FIXTURES, "--start-scripts", "/x/run-a-vm"]);
    expect(withScripts.stderr).toContain("--start-scripts applies to one test file");
    expect(withScripts.code).toBe(2);
    const none = await runCli(["test", FIXTURES, "--grep", "^nothing$"]);
    expect(none.stderr).toContain('no test file name matches --grep "^nothing$"');
    expect(none.code).toBe(2);
    const empty = await runCli(["test", FIXTURES, "--shard", "7/7", "--grep", "^(plain|quick)$"]);
    expect(empty.stderr).toContain("shard 7/7 has no test files");
    expect(empty.code).toBe(0);
  });

  it("stops at the first failure with --bail and skips the rest", async () => {
    const result = await runCli(
      [
        ...["test", FIXTURES, "--jobs", "1", "--bail", "--grep", "^(fails|plain|quick)$"],
        ...["--output-dir", temporaryDir("corral-runner-out-"), "--reporter", "json"],
      ],
      { XDG_RUNTIME_DIR: isolatedRuntimeDir() },
    );
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      tests: { name: string; status: string; subtests: { name: string; ok: boolean }[] }[];
    };
    expect(report.ok).toBe(false);
    expect(report.tests.map(({ name, status }) => `${name} ${status}`)).toEqual([
      "fails failed",
      "plain skipped",
      "quick skipped",
    ]);
    expect(report.tests[0]?.subtests).toEqual([
      { name: "one is one", ok: true, durationMs: expect.any(Number) },
      {
        name: "two is three",
        ok: false,
        durationMs: expect.any(Number),
        error: "expected 2 to be 3",
      },
    ]);
  });
});
