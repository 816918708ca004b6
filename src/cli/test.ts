// `corral test [files or folders…]`: runs one test file with the NixOS test driver's flags, or many
// `*.vm.ts` files at once (--jobs), a CI shard of them (--shard), with one report (--reporter).

import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { interact } from "../driver/interactive.ts";
import { pairVmNames, readDriverConfiguration } from "../driver/nixos-interface.ts";
import { checkOutputFile, prepareOutputFile } from "../driver/output-paths.ts";
import { junitSuites, parseReporter, type Reporter, renderReport } from "../driver/run-report.ts";
import { runTest, writeJUnit } from "../driver/run-test.ts";
import { type RunSummary, runTests, testResult } from "../driver/run-tests.ts";
import {
  DEFAULT_TEST_FOLDER,
  defaultJobs,
  findTestFiles,
  grepTestFiles,
  JOB_MEMORY_MIB,
  parseShard,
  type Shard,
  shardTestFiles,
  TEST_FILE_SUFFIX,
} from "../driver/test-files.ts";
import { AbortedError, CorralError, ErrorCodes } from "../errors.ts";
import type { Accelerator } from "../host/accelerator.ts";
import { EXIT_INTERRUPTED, interruptSignal } from "./interrupt.ts";
import {
  collectWords,
  parseAccel,
  parsePositiveInteger,
  parseSeconds,
  parseVlan,
} from "./parse.ts";

interface TestOptions {
  startScripts?: string[];
  vmNames?: string[];
  vmStartScripts?: string[];
  config?: string;
  keepMachineState?: boolean;
  vlans?: number[];
  testScript?: string;
  globalTimeout: number;
  outputDir?: string;
  keepVmState?: boolean;
  interactive?: boolean;
  junitXml?: string;
  accel?: Accelerator;
  reuseBoot?: boolean;
  grep?: string;
  jobs?: number;
  shard?: Shard;
  reporter: Reporter;
  bail?: boolean;
}

export const EXIT_TEST_FAILED = 1;

export function registerTest(program: Command): void {
  program
    .command("test")
    .summary("run multi-VM tests written in TypeScript")
    .description(
      "Run test files: TypeScript modules whose default export is defineTest({ machines }, fn) " +
        "or an async function receiving the test context. Machines come from the file or from " +
        "NixOS-style start scripts (--start-scripts); VLANs are vde_switch hubs. Given folders " +
        `(or nothing: ./${DEFAULT_TEST_FOLDER}), it runs every *${TEST_FILE_SUFFIX} file in them, ` +
        "--jobs at a time, each with its own VLAN switches, sockets, output folder and state.",
    )
    .addHelpText(
      "after",
      "\nEnvironment fallbacks (for NixOS wrappers): startScripts, vmStartScripts, vmNames, vlans, testScript, globalTimeout. --config reads nixpkgs' JSON driver configuration (vms, vlans, global_timeout, test_script); flags win over it." +
        "\nMany files: each test's lines carry its name ([web] …, its path without .vm.ts from the folder given), serial consoles go only to " +
        "its output folder <output-dir>/<test> (default corral-results/<test>), and a terminal " +
        "shows a status line of the running tests; the report (--reporter) goes to stdout. " +
        `--jobs defaults to the number of cores, and no more than free memory / ${JOB_MEMORY_MIB} MiB ` +
        "(a VM under TCG keeps a core busy); at least 1. --shard i/n takes every n-th file of the " +
        "sorted list from the i-th: the same on every CI runner, disjoint, and covering the suite." +
        "\nExit status: 0 every test passed; 1 a test failed or timed out; 2 bad usage or " +
        "configuration (a single test file that does not load, a bad machine name or spec, an " +
        "unknown image, a bad VLAN or start script, an output path that cannot be used, no test " +
        "files); 130 interrupted." +
        "\nThe output folder is corral's: created by it (marked by a .corral-output file) or empty " +
        "before the first run, its contents replaced by each run; any other folder is refused, and " +
        "so is one another live run uses.",
    )
    .argument("[paths...]", `test files (.ts) or folders of *${TEST_FILE_SUFFIX} files`)
    .addOption(
      new Option("--start-scripts <scripts...>", "run-<name>-vm scripts, one machine each")
        .env("startScripts")
        .argParser(collectWords((word) => word)),
    )
    .addOption(
      new Option(
        "--vm-start-scripts <scripts...>",
        "start scripts named by --vm-names (newer nixpkgs)",
      )
        .env("vmStartScripts")
        .argParser(collectWords((word) => word)),
    )
    .addOption(
      new Option("--vm-names <names...>", "the machines of --vm-start-scripts, in order")
        .env("vmNames")
        .argParser(collectWords((word) => word)),
    )
    .option(
      "-c, --config <file>",
      "a nixpkgs driver configuration (JSON: vms, vlans, global_timeout, test_script)",
    )
    .addOption(
      new Option("--vlans <numbers...>", "VLANs to create (0–255)")
        .env("vlans")
        .argParser(collectWords(parseVlan)),
    )
    .addOption(
      new Option("--test-script <file>", "the test file (instead of the argument)").env(
        "testScript",
      ),
    )
    .addOption(
      new Option(
        "--global-timeout <seconds>",
        "stop every machine of a test and fail it after this long (Infinity for no limit)",
      )
        .env("globalTimeout")
        .argParser(parseSeconds)
        .default(3600),
    )
    .option(
      "--output-dir <dir>",
      "logs, events and screenshots: a new, empty or corral-made folder (default: corral-results/<test>); with many files, the folder of their folders",
    )
    .option("--keep-vm-state", "keep each machine's disk state across runs")
    .option("-K, --keep-machine-state", "the same as --keep-vm-state (newer nixpkgs)")
    .option("-I, --interactive", "open a REPL with the machines instead of running the test")
    .option("--junit-xml <file>", "write JUnit XML, one test case per subtest, one file per run")
    .option("--accel <accel>", "kvm or tcg (default: KVM when it works)", parseAccel)
    .option(
      "--reuse-boot",
      "restore each machine from its boot snapshot; the first run boots and saves them (see corral snapshot)",
    )
    .option(
      "--grep <regex>",
      "only the test files whose name (path without .vm.ts) matches: a file is one test; its subtests are steps of it, not selected apart",
    )
    .option(
      "-j, --jobs <n>",
      "test files run at once (default: from cores and memory)",
      parsePositiveInteger,
    )
    .option(
      "--shard <i/n>",
      "only the i-th of n shares of the test files (CI matrices)",
      parseShard,
    )
    .addOption(
      new Option("--reporter <name>", "what goes to stdout: list, json or junit")
        .argParser(parseReporter)
        .default("list"),
    )
    .option(
      "--bail",
      "stop at the first test that fails: running ones are interrupted, the rest skipped",
    )
    .action(async (paths: string[], options: TestOptions, command: Command) => {
      if (options.keepMachineState) options.keepVmState = true;
      const timeoutGiven = command.getOptionValueSource("globalTimeout") !== "default";
      process.exitCode = await test(paths, options, timeoutGiven);
    });
}

async function test(paths: string[], options: TestOptions, timeoutGiven: boolean): Promise<number> {
  if (await isSingleTest(paths, options)) return single(paths[0], options, timeoutGiven);
  const singleOnly = [
    ["--interactive", options.interactive],
    ["--start-scripts", options.startScripts],
    ["--vm-start-scripts", options.vmStartScripts],
    ["--config", options.config],
    ["--vlans", options.vlans],
  ].find(([, given]) => given !== undefined);
  if (singleOnly) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${singleOnly[0]} applies to one test file: give a single file, without --grep, --shard or --jobs`,
    );
  }
  const files = await selectFiles(paths, options);
  if (files.length === 0) {
    const shard = options.shard as Shard;
    process.stderr.write(`shard ${shard.index}/${shard.count} has no test files\n`);
  }
  const junitXml = options.junitXml ? resolve(options.junitXml) : undefined;
  if (junitXml) {
    await checkOutputFile(junitXml, "JUnit report");
    await prepareOutputFile(junitXml, "JUnit report");
  }
  const summary = await runTests({
    files,
    jobs: options.jobs ?? defaultJobs(),
    outputRoot: resolve(options.outputDir ?? "corral-results"),
    globalTimeout: options.globalTimeout,
    ...(options.bail ? { bail: true } : {}),
    ...(options.keepVmState ? { keepVmState: true } : {}),
    ...(options.accel ? { accel: options.accel } : {}),
    ...(options.reuseBoot ? { reuseBoot: true } : {}),
    signal: interruptSignal(),
  });
  return report(summary, options, junitXml);
}

/**
 * One test in the NixOS driver's way: a test script (argument, --test-script or $testScript)
 * and perhaps start scripts, its output straight into --output-dir.
 */
async function isSingleTest(paths: string[], options: TestOptions): Promise<boolean> {
  if (options.grep !== undefined || options.shard || options.jobs !== undefined) return false;
  if (paths.length === 0) {
    return [options.testScript, options.startScripts, options.vmStartScripts, options.config].some(
      (given) => given !== undefined,
    );
  }
  if (paths.length > 1) return false;
  return !(await stat(paths[0] as string).catch(() => undefined))?.isDirectory();
}

async function single(
  path: string | undefined,
  options: TestOptions,
  timeoutGiven: boolean,
): Promise<number> {
  const config = options.config ? await readDriverConfiguration(options.config) : undefined;
  const file = path ?? options.testScript ?? config?.testScript;
  if (!file) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      "no test file: give one as argument, with --test-script or in --config",
    );
  }
  const startScripts = [
    ...(options.startScripts ?? []),
    ...(pairVmNames(options.vmNames, options.vmStartScripts) ?? []),
    ...(config?.startScripts ?? []),
  ];
  const vlans = [...new Set([...(options.vlans ?? []), ...(config?.vlans ?? [])])];
  const outcome = await runTest({
    script: file,
    ...(startScripts.length ? { startScripts } : {}),
    ...(vlans.length ? { vlans } : {}),
    globalTimeout:
      timeoutGiven || config?.globalTimeout === undefined
        ? options.globalTimeout
        : config.globalTimeout,
    ...(options.outputDir ? { outputDir: options.outputDir } : {}),
    ...(options.keepVmState ? { keepVmState: true } : {}),
    ...(options.junitXml ? { junitXml: options.junitXml } : {}),
    ...(options.accel ? { accel: options.accel } : {}),
    ...(options.reuseBoot ? { reuseBoot: true } : {}),
    ...(options.interactive ? { interact } : {}),
    signal: interruptSignal(),
  });
  if (outcome.error instanceof AbortedError) return EXIT_INTERRUPTED;
  if (options.reporter !== "list") {
    const result = testResult({ path: resolve(file), name: file }, outcome);
    const summary = {
      ok: outcome.ok,
      interrupted: false,
      durationMs: outcome.durationMs,
      results: [result],
    };
    process.stdout.write(renderReport(summary, options.reporter));
  }
  return outcome.ok ? 0 : EXIT_TEST_FAILED;
}

/** The files of the run: found, grepped, sharded. Throws CORRAL_NOT_FOUND when there are none. */
async function selectFiles(paths: string[], options: TestOptions) {
  const given = paths.length ? paths : [options.testScript ?? DEFAULT_TEST_FOLDER];
  let files = await findTestFiles(given);
  if (files.length === 0) {
    throw new CorralError(
      ErrorCodes.NOT_FOUND,
      `no *${TEST_FILE_SUFFIX} test files in ${given.join(", ")}`,
    );
  }
  if (options.grep !== undefined) {
    files = grepTestFiles(files, options.grep);
    if (files.length === 0) {
      throw new CorralError(
        ErrorCodes.NOT_FOUND,
        `no test file name matches --grep ${JSON.stringify(options.grep)}`,
      );
    }
  }
  return options.shard ? shardTestFiles(files, options.shard) : files;
}

async function report(
  summary: RunSummary,
  options: TestOptions,
  junitXml: string | undefined,
): Promise<number> {
  if (junitXml) await writeJUnit(junitXml, junitSuites(summary));
  process.stdout.write(renderReport(summary, options.reporter));
  if (summary.interrupted) return EXIT_INTERRUPTED;
  return summary.ok ? 0 : EXIT_TEST_FAILED;
}
