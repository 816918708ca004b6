// Runs one test file: loads it, checks its configuration and output paths, creates its driver,
// runs the test under the global timeout, and reports where it failed. Writes the output folder
// and, when asked, JUnit XML.

import { readFile, writeFile } from "node:fs/promises";
import { registerHooks } from "node:module";
import { basename, extname, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { formatMs, setLongTimeout } from "../deadline.ts";
import { AbortedError, CorralError, ErrorCodes, TimeoutError } from "../errors.ts";
import type { Accelerator } from "../host/accelerator.ts";
import { Driver, type DriverOptions, describeFailure } from "./driver.ts";
import { DriverLog } from "./driver-log.ts";
import { type JUnitSuite, renderJUnit } from "./junit.ts";
import {
  checkOutputDir,
  checkOutputFile,
  claimOutputDir,
  prepareOutputFile,
} from "./output-paths.ts";
import { isTestDefinition, type TestDefinition, type TestFunction } from "./test-definition.ts";

export interface RunTestOptions {
  /** The test file: a module whose default export is `defineTest(…)` or an async function. */
  script: string;
  startScripts?: DriverOptions["startScripts"];
  vlans?: number[];
  /** Default: ./corral-results/<test file name>. */
  outputDir?: string;
  keepVmState?: boolean;
  /** Names the kept state folders apart from other tests' (see `DriverOptions.stateKey`). */
  stateKey?: string;
  /** Show serial console lines on the terminal (default true; always in the output folder). */
  serialStdout?: boolean;
  accel?: Accelerator;
  /** Seconds; the test file's own `globalTimeout` wins. Default 3600. */
  globalTimeout?: number;
  junitXml?: string;
  /** Restore machines from boot snapshots (saved on the first run); also set by `defineTest`. */
  reuseBoot?: boolean;
  signal?: AbortSignal;
  terminal?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Instead of running the test, hand the driver to this (the interactive mode). */
  interact?: (driver: Driver, test: TestFunction) => Promise<void>;
}

export interface TestOutcome {
  ok: boolean;
  error?: unknown;
  /** Whether the global timeout stopped the test. */
  timedOut: boolean;
  durationMs: number;
  outputDir: string;
  /** The test as a JUnit suite: one case per subtest (or one for the file). */
  junit: JUnitSuite;
}

const DEFAULT_GLOBAL_TIMEOUT_S = 3600;
/** corral's own entry point: index.ts when running from the sources, index.js when built. */
const CORRAL_ENTRY = new URL(`../index${extname(fileURLToPath(import.meta.url))}`, import.meta.url)
  .href;

let hooksRegistered = false;

/**
 * Throws CorralError (CORRAL_INVALID_ARGUMENT, CORRAL_NOT_FOUND, CORRAL_CONFLICT or
 * CORRAL_TEST_LOAD_FAILED) for a test that cannot start: a file that does not load, a bad machine
 * or VLAN, an output path that cannot be used (see output-paths.ts). All of these are checked
 * before the output folder is touched. A test that runs and fails is an outcome, not a throw.
 */
export async function runTest(options: RunTestOptions): Promise<TestOutcome> {
  const script = resolve(options.script);
  const test = await untilInterrupted(loadTest(script), options.signal);
  const limitMs = globalTimeoutMs(test, options);
  const driverOptions: DriverOptions = {
    machines: test.machines,
    ...(options.startScripts ? { startScripts: options.startScripts } : {}),
    ...(options.vlans ? { vlans: options.vlans } : {}),
    ...(options.keepVmState ? { keepVmState: true } : {}),
    ...(options.stateKey ? { stateKey: options.stateKey } : {}),
    ...(options.accel ? { accel: options.accel } : {}),
    ...(options.reuseBoot || test.reuseBoot ? { reuseBoot: true } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  await Driver.check(driverOptions);
  const outputDir = resolve(
    options.outputDir ?? `corral-results/${basename(script, extname(script))}`,
  );
  const junitXml = options.junitXml ? resolve(options.junitXml) : undefined;
  await checkOutputDir(outputDir);
  if (junitXml) await checkOutputFile(junitXml, "JUnit report");
  throwIfInterrupted(options.signal);
  await using _output = await claimOutputDir(outputDir);
  if (junitXml) await prepareOutputFile(junitXml, "JUnit report");
  throwIfInterrupted(options.signal);
  const log = new DriverLog({
    outputDir,
    ...(options.terminal ? { terminal: options.terminal } : {}),
  });
  if (options.serialStdout === false) log.serialStdout = false;
  const started = performance.now();
  let driver: Driver | undefined;
  let ran: { error: unknown; timedOut: boolean };
  try {
    driver = await Driver.create({ ...driverOptions, outputDir, log });
    ran = options.interact
      ? await options.interact(driver, test.run).then(() => ({ error: undefined, timedOut: false }))
      : await runUnderLimits(driver, test, limitMs, options.signal);
  } catch (error) {
    await log.close();
    throw error;
  } finally {
    await driver?.[Symbol.asyncDispose]();
  }
  const durationMs = performance.now() - started;
  const outcome: TestOutcome = {
    ok: ran.error === undefined,
    error: ran.error,
    timedOut: ran.timedOut,
    durationMs,
    outputDir,
    junit: junitSuite(driver, script, ran.error, durationMs),
  };
  if (!outcome.ok) log.log(await describeError(outcome.error, script));
  log.result(outcome.ok, outcome.durationMs, outcome.ok ? undefined : errorMessage(outcome.error));
  log.log(
    `${outcome.ok ? "test passed" : "test failed"} in ${formatMs(outcome.durationMs)}; logs in ${relative(process.cwd(), outputDir) || "."}`,
  );
  await log.close();
  if (junitXml) await writeJUnit(junitXml, outcome.junit);
  return outcome;
}

/** The test as a JUnit suite: its subtests, or the file as one case; a failure outside them too. */
function junitSuite(
  driver: Driver,
  script: string,
  error: unknown,
  durationMs: number,
): JUnitSuite {
  const ok = error === undefined;
  const cases = driver.subtests.length
    ? [...driver.subtests]
    : [{ name: basename(script), durationMs, ...(ok ? {} : { failure: describeFailure(error) }) }];
  if (!ok && driver.subtests.every((testCase) => !testCase.failure) && driver.subtests.length) {
    cases.push({ name: "(outside subtests)", durationMs: 0, failure: describeFailure(error) });
  }
  return { name: basename(script), durationMs, timestamp: new Date(), cases };
}

/** Writes `suites` as one JUnit XML file. Throws CORRAL_INVALID_ARGUMENT when it cannot. */
export async function writeJUnit(file: string, suites: JUnitSuite | JUnitSuite[]): Promise<void> {
  const xml = renderJUnit(suites);
  await writeFile(file, xml).catch((error: unknown) => {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `JUnit report ${file} cannot be written: ${errorMessage(error)}`,
      { cause: error },
    );
  });
}

/** `promise`, or an AbortedError as soon as `signal` fires (Ctrl-C) while it is pending. */
async function untilInterrupted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  throwIfInterrupted(signal);
  if (!signal) return promise;
  const interrupted = Promise.withResolvers<never>();
  const onAbort = () => interrupted.reject(new AbortedError("the test was interrupted"));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([promise, interrupted.promise]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError("the test was interrupted");
}

/** The test file's `globalTimeout`, else the option's, in ms; any size, Infinity for none. */
function globalTimeoutMs(test: TestDefinition, options: RunTestOptions): number {
  const seconds = test.globalTimeout ?? options.globalTimeout ?? DEFAULT_GLOBAL_TIMEOUT_S;
  if (typeof seconds === "number" && seconds >= 0) return seconds * 1000;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `globalTimeout must be a number of seconds from 0 up (Infinity for no limit), not ${typeof seconds === "string" ? JSON.stringify(seconds) : String(seconds)}`,
  );
}

/**
 * Runs the test; resolves with the error that failed it (undefined when it passed) and whether
 * the global timeout stopped it. Once it has
 * failed, the driver refuses every verb and helper, so nothing of the test body runs on.
 */
async function runUnderLimits(
  driver: Driver,
  test: TestDefinition,
  limitMs: number,
  signal: AbortSignal | undefined,
): Promise<{ error: unknown; timedOut: boolean }> {
  let timedOut = false;
  const cancelTimer = setLongTimeout(() => {
    timedOut = true;
    const where = driver.log.openSteps.join(" > ") || "outside any step";
    driver.abort(
      new TimeoutError(`global timeout of ${formatMs(limitMs)} reached; the test was at: ${where}`),
    );
  }, limitMs);
  const onAbort = () => driver.abort(new AbortedError("the test was interrupted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.race([test.run(driver.context() as never), driver.failed]);
    return { error: undefined, timedOut };
  } catch (error) {
    // Parallel branches of the body may still be running: they must not go on.
    driver.abort(error);
    return { error, timedOut };
  } finally {
    cancelTimer();
    signal?.removeEventListener("abort", onAbort);
  }
}

async function loadTest(script: string): Promise<TestDefinition> {
  if (!hooksRegistered) {
    // Test files import "corral"; wherever they live, that is this corral.
    registerHooks({
      resolve: (specifier, context, next) =>
        specifier === "corral"
          ? { url: CORRAL_ENTRY, shortCircuit: true }
          : next(specifier, context),
    });
    hooksRegistered = true;
  }
  let exported: unknown;
  try {
    exported = ((await import(pathToFileURL(script).href)) as { default?: unknown }).default;
  } catch (error) {
    throw new CorralError(ErrorCodes.TEST_LOAD_FAILED, loadFailure(error, script), {
      cause: error,
    });
  }
  if (isTestDefinition(exported)) return exported;
  if (typeof exported === "function") {
    return {
      machines: {},
      globalTimeout: undefined,
      run: exported as TestFunction,
    } as TestDefinition;
  }
  throw new CorralError(
    ErrorCodes.TEST_LOAD_FAILED,
    `test file ${script} must export default defineTest(…) or an async function (ctx) => {…}`,
  );
}

/** Why `script` did not load: it does not exist, a module it imports does not, or its error. */
function loadFailure(error: unknown, script: string): string {
  // Node says "Cannot find module '<path>' imported from <importer>" (or "package"), and this
  // for the test file itself too: only the path tells which is missing.
  const missing =
    (error as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND"
      ? /^Cannot find (?:module|package) '(.+)' imported from (.+)$/.exec(errorMessage(error))
      : null;
  if (!missing) {
    return `test file ${script} cannot be loaded: ${errorMessage(error)}${locationOf(error, script)}`;
  }
  const [, module, importer] = missing;
  if (module === script) return `test file ${script} does not exist`;
  const via = importer === script ? "" : ` (imported by ${importer})`;
  return `test file ${script} cannot be loaded: its import ${module} was not found${via}`;
}

/**
 * The error (its message already ends with its details), where in the test file it happened, and
 * that line of the file.
 */
async function describeError(error: unknown, script: string): Promise<string> {
  const lines = [errorMessage(error)];
  const at = frameIn(error, script);
  if (at) {
    const source = (await readFile(script, "utf8").catch(() => "")).split("\n")[at.line - 1];
    lines.push(`at ${relative(process.cwd(), script)}:${at.line}:${at.column}`);
    if (source) lines.push(`  ${at.line} | ${source.trim()}`);
  }
  return lines.join("\n");
}

function locationOf(error: unknown, script: string): string {
  const at = frameIn(error, script);
  return at ? ` (at ${relative(process.cwd(), script)}:${at.line}:${at.column})` : "";
}

function frameIn(error: unknown, script: string): { line: number; column: number } | undefined {
  const stack = error instanceof Error ? (error.stack ?? "") : "";
  const url = pathToFileURL(script).href;
  for (const candidate of [url, script]) {
    const escaped = candidate.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const match = new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(stack);
    if (match) return { line: Number(match[1]), column: Number(match[2]) };
  }
  return undefined;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
