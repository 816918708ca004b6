// `corral test` end to end: the two-machine example with declared machines and with start
// scripts, a failing test, JUnit, the global timeout, Ctrl-C, configuration errors, and the
// same machines from vitest (examples/vitest runs as its own project) and node:test.

import { spawn } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  CLI,
  collect,
  isolatedRuntimeDir,
  processesMentioning,
  runCli,
  startCli,
  temporaryDir,
} from "../helpers/cli.ts";

const FIXTURES = "test/fixtures/driver";
/** SIGKILLs of the kill loop; 30 runs once by hand left nothing (issue 10, bug 8). */
const KILL_RUNS = 8;

async function expectNothingLeft(runtimeDir: string): Promise<void> {
  for (let i = 0; i < 50 && processesMentioning(runtimeDir).length > 0; i++) await sleep(100);
  expect(processesMentioning(runtimeDir)).toEqual([]);
  expect(readdirSync(runtimeDir)).toEqual([]);
}

function testCases(junit: string): { name: string; failed: boolean }[] {
  return [...junit.matchAll(/<testcase [^>]*name="([^"]*)"[^>]*?(\/>|>\s*<failure)/g)].map(
    (match) => ({ name: match[1] ?? "", failed: match[2] !== "/>" }),
  );
}

describe("corral test", () => {
  it("passes the two-machine example and writes JUnit, the event log and console logs", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const out = temporaryDir("corral-test-out-");
    const junit = join(out, "junit.xml");
    const result = await runCli(
      ["test", "examples/two-machines.ts", "--output-dir", out, "--junit-xml", junit],
      { XDG_RUNTIME_DIR: runtimeDir },
    );
    expect(result.stderr).toContain("test passed");
    expect(result.code).toBe(0);
    const xml = readFileSync(junit, "utf8");
    expect(xml).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites tests="4" failures="0"/,
    );
    expect(testCases(xml)).toEqual([
      { name: "the server serves a page", failed: false },
      { name: "the client fetches it by name", failed: false },
      { name: "a blocked server is unreachable", failed: false },
      { name: "an unblocked server is reachable again", failed: false },
    ]);
    const events = readFileSync(join(out, "events.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string; ok?: boolean });
    expect(events.at(-2)).toMatchObject({ type: "result", ok: true });
    expect(readFileSync(join(out, "server.console.log"), "utf8")).toContain("Reached target");
    expect(readFileSync(join(out, "client.console.log"), "utf8")).toContain("Reached target");
    await expectNothingLeft(runtimeDir);
  });

  it("passes the same scenario with corral-built start scripts and --vlans", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const scripts = temporaryDir("corral-test-scripts-");
    const made = await runCli([
      "image",
      "scripts",
      "server",
      "client",
      "--vlans",
      "1",
      "--out",
      scripts,
    ]);
    expect(made.code).toBe(0);
    const paths = made.stdout.trim().split("\n");
    expect(paths).toEqual([join(scripts, "run-client-vm"), join(scripts, "run-server-vm")]);
    expect(readFileSync(paths[1] ?? "", "utf8")).toContain("mac=52:54:00:12:01:02");
    // Names resolve under any driver: every machine's address is baked into each script.
    expect(readFileSync(paths[0] ?? "", "utf8")).toContain(
      "systemd.hostname=client corral.hosts=192.168.1.1:client,192.168.1.2:server",
    );
    const result = await runCli(
      ["test", "examples/two-machines-start-scripts.ts", "--output-dir", temporaryDir("out-")],
      { XDG_RUNTIME_DIR: runtimeDir, startScripts: paths.join(" "), vlans: "1" },
    );
    expect(result.stderr).toContain("test passed");
    expect(result.code).toBe(0);
    await expectNothingLeft(runtimeDir);
  });

  it("with --reuse-boot, saves boot snapshots on the first run and restores both machines on the second", async () => {
    const forget = () =>
      Promise.all(["server", "client"].map((name) => runCli(["snapshot", "rm", name])));
    await forget();
    onTestFinished(async () => {
      await forget();
    });
    const args = [
      "test",
      "examples/two-machines.ts",
      "--reuse-boot",
      "--output-dir",
      temporaryDir("out-"),
    ];
    const first = await runCli(args);
    expect(first.stderr).toContain("test passed");
    expect(first.stderr).toMatch(/server: save boot snapshot .*snapshots\/server-[0-9a-f]{16}/);
    expect(first.stderr).toMatch(/client: save boot snapshot .*snapshots\/client-[0-9a-f]{16}/);
    const listed = await runCli(["snapshot", "list"]);
    expect(listed.stdout).toMatch(/^client-[0-9a-f]{16} +debian-12-/m);
    expect(listed.stdout).toMatch(/^server-[0-9a-f]{16} +debian-12-/m);
    const runtimeDir = isolatedRuntimeDir();
    const second = await runCli(args, { XDG_RUNTIME_DIR: runtimeDir });
    expect(second.stderr).toContain("test passed");
    expect(second.stderr).toMatch(/server: restores its boot snapshot/);
    expect(second.stderr).toMatch(/client: restores its boot snapshot/);
    expect(second.stderr).not.toContain("save boot snapshot");
    expect(second.code).toBe(0);
    await expectNothingLeft(runtimeDir);
  });

  it("exits 1 for a failing test and points at the failing line", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const out = temporaryDir("corral-test-out-");
    const junit = join(out, "junit.xml");
    const script = `${FIXTURES}/fails.ts`;
    const line =
      readFileSync(script, "utf8")
        .split("\n")
        .findIndex((text) => text.includes("/no/such/file")) + 1;
    const result = await runCli(["test", script, "--output-dir", out, "--junit-xml", junit], {
      XDG_RUNTIME_DIR: runtimeDir,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("solo: command failed with exit code 1: cat /no/such/file");
    // The error's details (the command's stderr) are part of its message: shown once.
    expect(result.stderr.split("\n").filter((l) => l.includes("cat: /no/such/file"))).toEqual([
      "  | cat: /no/such/file: No such file or directory",
    ]);
    expect(result.stderr).toContain(`at ${script}:${line}:`);
    expect(result.stderr).toContain("test failed");
    expect(testCases(readFileSync(junit, "utf8"))).toEqual([
      { name: "the guest answers", failed: false },
      { name: "a false assertion", failed: true },
    ]);
    await expectNothingLeft(runtimeDir);
  });

  it("stops every machine at the global timeout and says where the test was", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const result = await runCli(
      [
        "test",
        `${FIXTURES}/hangs.ts`,
        "--global-timeout",
        "4",
        "--output-dir",
        temporaryDir("out-"),
      ],
      { XDG_RUNTIME_DIR: runtimeDir },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'global timeout of 4.0 s reached; the test was at: subtest: waiting forever > sleeper: waitForFile("/never")',
    );
    await expectNothingLeft(runtimeDir);
  });

  it("fails at once, before any VM boots, when the test uses a machine it does not declare", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const started = performance.now();
    const result = await runCli(
      ["test", `${FIXTURES}/misspelled-machine.ts`, "--output-dir", temporaryDir("out-")],
      { XDG_RUNTIME_DIR: runtimeDir },
    );
    expect(result.stderr).toContain('no machine named "servr"; machines: server');
    expect(result.stderr).toMatch(/at test\/fixtures\/driver\/misspelled-machine.ts:7:/);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toContain("start all VMs");
    expect(performance.now() - started).toBeLessThan(5000);
    await expectNothingLeft(runtimeDir);
  });

  it("fails at once when a VLAN's switch dies, naming the VLAN", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const started = performance.now();
    const result = await runCli(
      ["test", `${FIXTURES}/switch-dies.ts`, "--output-dir", temporaryDir("out-")],
      { XDG_RUNTIME_DIR: runtimeDir },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /the switch of VLAN 1 \(vde_switch, process \d+\) was killed by SIGKILL: the machines on VLAN 1 are cut off/,
    );
    // Well before the wait's own ten minutes (boot included).
    expect(performance.now() - started).toBeLessThan(120_000);
    await expectNothingLeft(runtimeDir);
  });

  it("takes a huge global timeout, from the flag or the environment, as no limit", async () => {
    const ways: [string[], Record<string, string>][] = [
      [["--global-timeout", "1e9"], {}],
      [[], { globalTimeout: "Infinity" }],
    ];
    for (const [flags, env] of ways) {
      const result = await runCli(
        ["test", `${FIXTURES}/quick.ts`, ...flags, "--output-dir", temporaryDir("out-")],
        { XDG_RUNTIME_DIR: isolatedRuntimeDir(), ...env },
      );
      expect(result.stderr).toContain("test passed");
      expect(result.code).toBe(0);
    }
  });

  it("runs nothing more of the test body after the global timeout", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const out = temporaryDir("out-");
    const result = await runCli(
      ["test", `${FIXTURES}/runs-on.ts`, "--global-timeout", "2", "--output-dir", out],
      { XDG_RUNTIME_DIR: runtimeDir },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "global timeout of 2.0 s reached; the test was at: subtest: busy past the global timeout",
    );
    expect(result.stderr.trimEnd().split("\n").at(-1)).toMatch(/^test failed in 2\.\d s/);
    expect(result.stderr).not.toContain("the body ran on");
    expect(result.stderr).not.toContain("late");
    expect(readdirSync(out).sort()).toEqual([".corral-output", "events.jsonl"]);
    const events = readFileSync(join(out, "events.jsonl"), "utf8").trim().split("\n");
    expect(JSON.parse(events.at(-1) ?? "{}")).toMatchObject({ type: "log" });
    expect(JSON.parse(events.at(-1) ?? "{}").message).toMatch(/^test failed in /);
    await expectNothingLeft(runtimeDir);
  });

  it(`leaves no state folder or process when SIGKILLed in its first 1.5 s (${KILL_RUNS} times)`, async () => {
    const leaks: string[] = [];
    for (let run = 0; run < KILL_RUNS; run++) {
      const runtimeDir = isolatedRuntimeDir();
      // Spread over 0.2–1.5 s: loading, VLAN switches, state folders, disks, QEMU starting.
      const delayMs = Math.round(200 + (1300 * (run + Math.random())) / KILL_RUNS);
      const child = startCli(
        ["test", "examples/two-machines.ts", "--output-dir", temporaryDir("out-")],
        { XDG_RUNTIME_DIR: runtimeDir },
      );
      const done = collect(child);
      await sleep(delayMs);
      child.kill("SIGKILL");
      await done;
      // The watchdog waits for the killed processes to be gone before it removes the folders.
      for (
        let i = 0;
        i < 150 &&
        (processesMentioning(runtimeDir).length > 0 || readdirSync(runtimeDir).length > 0);
        i++
      ) {
        await sleep(100);
      }
      const left = [...readdirSync(runtimeDir), ...processesMentioning(runtimeDir)];
      if (left.length > 0) leaks.push(`killed after ${delayMs} ms: ${left.join("; ")}`);
      for (const line of processesMentioning(runtimeDir))
        process.kill(Number(line.split(" ")[0]), "SIGKILL");
    }
    expect(leaks).toEqual([]);
  });

  it("exits 130 on Ctrl-C and leaves no VM, switch or socket", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const child = startCli(
      ["test", "examples/two-machines.ts", "--output-dir", temporaryDir("out-")],
      {
        XDG_RUNTIME_DIR: runtimeDir,
      },
    );
    const done = collect(child);
    for (
      let i = 0;
      i < 200 && processesMentioning(`${runtimeDir}/`).filter((p) => p.includes("qemu")).length < 2;
      i++
    ) {
      await sleep(100);
    }
    expect(processesMentioning(runtimeDir).some((line) => line.includes("vde_switch"))).toBe(true);
    child.kill("SIGINT");
    const result = await done;
    expect(result.code).toBe(130);
    await expectNothingLeft(runtimeDir);
  });

  describe("refuses bad configurations with exit 2 before any VM starts", () => {
    const cases: [string, (dir: string) => string[], RegExp][] = [
      [
        "a missing test file",
        () => ["test", "no/such/test.ts"],
        /test file .*no\/such\/test.ts does not exist/,
      ],
      [
        "a file that does not compile",
        (dir) => ["test", write(dir, "broken.ts", "export default async () => { const x = ; };\n")],
        /broken.ts cannot be loaded: .*(Unexpected token|Expression expected|SyntaxError)/,
      ],
      [
        "a file that throws at import",
        (dir) => ["test", write(dir, "throws.ts", 'throw new Error("boom at import");\n')],
        /throws.ts cannot be loaded: boom at import \(at .*throws.ts:1:7\)/,
      ],
      [
        "a file that exports no test",
        (dir) => ["test", write(dir, "none.ts", "export const x = 1;\n")],
        /must export default defineTest/,
      ],
      [
        "a file whose import is missing",
        (dir) => [
          "test",
          write(
            dir,
            "bad-import.ts",
            'import "./no-such-helper.ts";\nexport default async () => {};\n',
          ),
        ],
        /bad-import.ts cannot be loaded: its import .*\/no-such-helper.ts was not found/,
      ],
      [
        "a file whose package import is missing",
        (dir) => [
          "test",
          write(
            dir,
            "bad-package.ts",
            'import "no-such-package";\nexport default async () => {};\n',
          ),
        ],
        /bad-package.ts cannot be loaded: its import no-such-package was not found/,
      ],
      [
        "negative memory",
        (dir) => ["test", spec(dir, "{ memoryMiB: -5 }")],
        /machine "a": memoryMiB is -5; expected a whole number of MiB, at least 64/,
      ],
      [
        "memory that is not a number",
        (dir) => ["test", spec(dir, '{ memoryMiB: "lots" }')],
        /machine "a": memoryMiB is "lots"; expected a whole number of MiB, at least 64/,
      ],
      [
        "no CPUs",
        (dir) => ["test", spec(dir, "{ cpus: 0 }")],
        /machine "a": cpus is 0; expected a whole number from 1 to 255/,
      ],
      [
        "a misspelled spec field",
        (dir) => ["test", spec(dir, "{ memory: 512 }")],
        /machine "a": unknown field "memory"; fields: image, startScript, memoryMiB, cpus/,
      ],
      [
        "a 300-character machine name",
        (dir) => [
          "test",
          write(
            dir,
            "long-name.ts",
            `import { defineTest } from "corral";\nexport default defineTest({ machines: { ${"a".repeat(300)}: {} } }, async () => {});\n`,
          ),
        ],
        /machine name "a{20}.*" \(300 characters\) is not a valid host name: .*at most 63 characters/,
      ],
      [
        "an unknown image",
        (dir) => ["test", spec(dir, '{ image: "no-such-image" }')],
        /unknown image "no-such-image"; known recipes: debian-12/,
      ],
      [
        "a VLAN out of range",
        () => ["test", `${FIXTURES}/bad-vlan.ts`],
        /machine "a": vlans is \[300\]; expected a list of VLAN numbers, whole numbers from 0 to 255/,
      ],
      [
        "a negative globalTimeout in the test file",
        (dir) => [
          "test",
          write(
            dir,
            "negative.ts",
            'import { defineTest } from "corral";\nexport default defineTest({ machines: {}, globalTimeout: -5 }, async () => {});\n',
          ),
        ],
        /globalTimeout must be a number of seconds from 0 up \(Infinity for no limit\), not -5/,
      ],
      [
        "a machine named like a helper",
        () => ["test", `${FIXTURES}/helper-name.ts`],
        /machine name "log" is taken by a test helper/,
      ],
      [
        "a start script that does not exist",
        () => ["test", `${FIXTURES}/server-declared.ts`, "--start-scripts", "/no/run-other-vm"],
        /start script \/no\/run-other-vm does not exist/,
      ],
      [
        "a start script that is not executable",
        (dir) => {
          const script = write(dir, "run-other-vm", "#!/bin/sh\n");
          chmodSync(script, 0o644);
          return ["test", `${FIXTURES}/server-declared.ts`, "--start-scripts", script];
        },
        /run-other-vm is not executable/,
      ],
      [
        "two machines with one name",
        (dir) => {
          const script = write(dir, "run-server-vm", "#!/bin/sh\n");
          chmodSync(script, 0o755);
          return ["test", `${FIXTURES}/server-declared.ts`, "--start-scripts", script];
        },
        /two machines are named "server"/,
      ],
    ];
    it.each(cases)("%s", async (_name, args, message) => {
      const runtimeDir = isolatedRuntimeDir();
      const dir = temporaryDir("corral-test-bad-");
      const result = await runCli([...args(dir), "--output-dir", join(dir, "out")], {
        XDG_RUNTIME_DIR: runtimeDir,
      });
      expect(result.stderr).toMatch(message);
      expect(result.code).toBe(2);
      expect(result.stderr).not.toContain("start all VMs");
      await expectNothingLeft(runtimeDir);
    });
  });

  it("opens a REPL with the machines in scope in --interactive mode", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const child = spawn(
      process.execPath,
      [CLI, "test", `${FIXTURES}/fails.ts`, "--interactive", "--output-dir", temporaryDir("out-")],
      { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir }, stdio: ["pipe", "pipe", "pipe"] },
    );
    onTestFinished(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    const done = collect(child);
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes("from-the-solo")) child.stdin.end(".exit\n");
    });
    child.stdin.write('await solo.succeed("echo from-the-$(hostname)")\n');
    const result = await done;
    expect(stdout).toContain("from-the-solo");
    expect(result.code).toBe(0);
    await expectNothingLeft(runtimeDir);
  });

  it("runs the node:test example", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const child = spawn(
      process.execPath,
      ["--test", "--test-reporter=tap", "examples/node-test/two-machines.test.ts"],
      {
        env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const result = await collect(child);
    expect(result.stdout).toContain("# pass 1");
    expect(result.code).toBe(0);
    await expectNothingLeft(runtimeDir);
  });
});

/** A test file declaring one machine `a` with `spec` (JavaScript, so that it may be wrong). */
function spec(dir: string, spec: string): string {
  return write(
    dir,
    "spec.ts",
    `import { defineTest } from "corral";\nexport default defineTest({ machines: { a: ${spec} } }, async () => {});\n`,
  );
}

function write(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
