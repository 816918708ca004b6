// `corral test [script.ts]`: runs a multi-VM test file, with the NixOS test driver's flags.

import { type Command, Option } from "commander";
import { interact } from "../driver/interactive.ts";
import { runTest } from "../driver/run-test.ts";
import { AbortedError, CorralError, ErrorCodes } from "../errors.ts";
import type { Accelerator } from "../host/accelerator.ts";
import { EXIT_INTERRUPTED, interruptSignal } from "./interrupt.ts";
import { collectWords, parseAccel, parseSeconds, parseVlan } from "./parse.ts";

interface TestOptions {
  startScripts?: string[];
  vlans?: number[];
  testScript?: string;
  globalTimeout: number;
  outputDir?: string;
  keepVmState?: boolean;
  interactive?: boolean;
  junitXml?: string;
  accel?: Accelerator;
  reuseBoot?: boolean;
}

export const EXIT_TEST_FAILED = 1;

export function registerTest(program: Command): void {
  program
    .command("test")
    .summary("run a multi-VM test written in TypeScript")
    .description(
      "Run a test file: a TypeScript module whose default export is defineTest({ machines }, fn) " +
        "or an async function receiving the test context. Machines come from the file or from " +
        "NixOS-style start scripts (--start-scripts); VLANs are vde_switch hubs.",
    )
    .addHelpText(
      "after",
      "\nEnvironment fallbacks (for NixOS wrappers): startScripts, vlans, testScript, globalTimeout." +
        "\nExit status: 0 the test passed; 1 it failed; 2 bad usage or configuration (a test file " +
        "that does not load, a bad machine name or spec, an unknown image, a bad VLAN or start " +
        "script, an output path that cannot be used); 130 interrupted." +
        "\nThe output folder is corral's: created by it (marked by a .corral-output file) or empty " +
        "before the first run, its contents replaced by each run; any other folder is refused, and " +
        "so is one another live run uses.",
    )
    .argument("[script]", "the test file (.ts)")
    .addOption(
      new Option("--start-scripts <scripts...>", "run-<name>-vm scripts, one machine each")
        .env("startScripts")
        .argParser(collectWords((word) => word)),
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
        "stop every machine and fail after this long (Infinity for no limit)",
      )
        .env("globalTimeout")
        .argParser(parseSeconds)
        .default(3600),
    )
    .option(
      "--output-dir <dir>",
      "logs, events and screenshots: a new, empty or corral-made folder (default: corral-results/<test>)",
    )
    .option("--keep-vm-state", "keep each machine's disk state across runs")
    .option("-I, --interactive", "open a REPL with the machines instead of running the test")
    .option("--junit-xml <file>", "write JUnit XML, one test case per subtest")
    .option("--accel <accel>", "kvm or tcg (default: KVM when it works)", parseAccel)
    .option(
      "--reuse-boot",
      "restore each machine from its boot snapshot; the first run boots and saves them (see corral snapshot)",
    )
    .action(async (script: string | undefined, options: TestOptions) => {
      process.exitCode = await test(script, options);
    });
}

async function test(script: string | undefined, options: TestOptions): Promise<number> {
  const file = script ?? options.testScript;
  if (!file) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      "no test file: give one as argument or with --test-script",
    );
  }
  const outcome = await runTest({
    script: file,
    ...(options.startScripts ? { startScripts: options.startScripts } : {}),
    ...(options.vlans ? { vlans: options.vlans } : {}),
    globalTimeout: options.globalTimeout,
    ...(options.outputDir ? { outputDir: options.outputDir } : {}),
    ...(options.keepVmState ? { keepVmState: true } : {}),
    ...(options.junitXml ? { junitXml: options.junitXml } : {}),
    ...(options.accel ? { accel: options.accel } : {}),
    ...(options.reuseBoot ? { reuseBoot: true } : {}),
    ...(options.interactive ? { interact } : {}),
    signal: interruptSignal(),
  });
  if (outcome.error instanceof AbortedError) return EXIT_INTERRUPTED;
  return outcome.ok ? 0 : EXIT_TEST_FAILED;
}
