// Runs many test files, `jobs` at a time, each as its own test: its own driver (VLAN switches and
// sockets in a state folder of its own), output folder and kept state. One test failing or timing
// out does not stop the others, unless `bail` is set.

import { join } from "node:path";
import { formatMs } from "../deadline.ts";
import { AbortedError } from "../errors.ts";
import type { Accelerator } from "../host/accelerator.ts";
import type { JUnitSuite } from "./junit.ts";
import { LiveStatus } from "./live-status.ts";
import { runTest, type TestOutcome } from "./run-test.ts";
import type { TestFile } from "./test-files.ts";

export type TestStatus = "passed" | "failed" | "timed out" | "interrupted" | "skipped";

export interface TestResult {
  name: string;
  file: string;
  status: TestStatus;
  /** 0 for a test that did not run. */
  durationMs: number;
  /** The test's output folder (logs, events.jsonl, console logs). */
  outputDir: string;
  /** Why it failed: the first line of the error. */
  error?: string;
  /** Its JUnit suite; missing for a test that did not start. */
  junit?: JUnitSuite;
}

export interface RunSummary {
  /** Every test passed (an empty run passes). */
  ok: boolean;
  /** The run was interrupted (its signal fired), not only stopped by `bail`. */
  interrupted: boolean;
  durationMs: number;
  /** In the order of the files. */
  results: TestResult[];
}

export interface RunTestsOptions {
  files: readonly TestFile[];
  /** Test files running at once, at least 1. */
  jobs: number;
  /** Each test writes into `<outputRoot>/<its name>`. */
  outputRoot: string;
  /** Stop at the first test that does not pass: running ones are interrupted, the rest skipped. */
  bail?: boolean;
  /** Seconds per test file; a file's own `globalTimeout` wins. */
  globalTimeout?: number;
  keepVmState?: boolean;
  accel?: Accelerator;
  reuseBoot?: boolean;
  /** Interrupts every running test; the rest are skipped. */
  signal?: AbortSignal;
  /** Where the tests' lines and the status line go; stderr by default. */
  terminal?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** Runs the files; resolves when every one has finished or been skipped. Never throws for a test. */
export async function runTests(options: RunTestsOptions): Promise<RunSummary> {
  const started = performance.now();
  const bail = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, bail.signal]) : bail.signal;
  const status = new LiveStatus(options.terminal ?? process.stderr, options.files.length);
  const results: TestResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < options.files.length; index = next++) {
      const file = options.files[index] as TestFile;
      const outputDir = join(options.outputRoot, file.name);
      if (signal.aborted) {
        results[index] = {
          name: file.name,
          file: file.path,
          status: "skipped",
          durationMs: 0,
          outputDir,
        };
        status.skipped();
        continue;
      }
      status.started(file.name);
      const result = await runOne(file, outputDir, options, signal, status);
      results[index] = result;
      status.finished(file.name, result.status);
      status.print(`${resultLine(result, status)}\n`);
      if (result.status !== "passed" && options.bail) bail.abort();
    }
  };
  const jobs = Math.max(1, Math.min(options.jobs, options.files.length));
  try {
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    status.close();
  }
  return {
    ok: results.every((result) => result.status === "passed"),
    interrupted: options.signal?.aborted ?? false,
    durationMs: performance.now() - started,
    results,
  };
}

async function runOne(
  file: TestFile,
  outputDir: string,
  options: RunTestsOptions,
  signal: AbortSignal,
  status: LiveStatus,
): Promise<TestResult> {
  const terminal = status.linesOf(file.name);
  const started = performance.now();
  try {
    const outcome = await runTest({
      script: file.path,
      outputDir,
      ...(options.globalTimeout !== undefined ? { globalTimeout: options.globalTimeout } : {}),
      ...(options.keepVmState
        ? { keepVmState: true, stateKey: file.name.replaceAll("/", "-") }
        : {}),
      ...(options.accel ? { accel: options.accel } : {}),
      ...(options.reuseBoot ? { reuseBoot: true } : {}),
      signal,
      terminal,
      // Several machines' consoles interleaved are unreadable: they are in the output folder.
      serialStdout: false,
    });
    return testResult(file, outcome);
  } catch (error) {
    // The test could not start: a file that does not load, a bad machine, a busy output folder.
    const message = error instanceof Error ? error.message : String(error);
    terminal.write(`corral: ${message}\n`);
    return {
      name: file.name,
      file: file.path,
      status: error instanceof AbortedError ? "interrupted" : "failed",
      durationMs: performance.now() - started,
      outputDir,
      error: message.split("\n")[0] ?? "",
    };
  } finally {
    await new Promise<void>((resolve) => terminal.end(resolve));
  }
}

/** The result of a test that ran, from its outcome. */
export function testResult(file: TestFile, outcome: TestOutcome): TestResult {
  const status: TestStatus = outcome.ok
    ? "passed"
    : outcome.error instanceof AbortedError
      ? "interrupted"
      : outcome.timedOut
        ? "timed out"
        : "failed";
  const error = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
  return {
    name: file.name,
    file: file.path,
    status,
    durationMs: outcome.durationMs,
    outputDir: outcome.outputDir,
    ...(outcome.ok ? {} : { error: error.split("\n")[0] ?? "" }),
    junit: { ...outcome.junit, name: file.name },
  };
}

function resultLine(result: TestResult, status: LiveStatus): string {
  const shown =
    result.status === "passed"
      ? status.style("green", "passed")
      : status.style(result.status === "interrupted" ? "yellow" : "red", result.status);
  const why = result.error ? `: ${result.error}` : "";
  return `${shown} ${result.name} in ${formatMs(result.durationMs)}${why}`;
}
