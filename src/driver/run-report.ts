// The report of a `corral test` run on stdout, as --reporter asks: `list` (a table of each test,
// its result, duration and log folder), `json`, or `junit` (one JUnit XML for the whole run).

import { isAbsolute, relative } from "node:path";
import { formatMs } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { type JUnitSuite, renderJUnit } from "./junit.ts";
import type { RunSummary, TestResult } from "./run-tests.ts";

export const REPORTERS = ["list", "json", "junit"] as const;
export type Reporter = (typeof REPORTERS)[number];

/** Throws CORRAL_INVALID_ARGUMENT for a name that is not a reporter. */
export function parseReporter(name: string): Reporter {
  if ((REPORTERS as readonly string[]).includes(name)) return name as Reporter;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `--reporter ${JSON.stringify(name)} is not a reporter: use ${REPORTERS.join(", ")}`,
  );
}

/** The run as `reporter` shows it, ending in a newline. */
export function renderReport(summary: RunSummary, reporter: Reporter): string {
  if (reporter === "junit") return renderJUnit(junitSuites(summary));
  if (reporter === "json") return `${JSON.stringify(jsonReport(summary), null, 2)}\n`;
  return listReport(summary);
}

/** Every test's JUnit suite; one with a single failing case for a test that did not start. */
export function junitSuites(summary: RunSummary): JUnitSuite[] {
  return summary.results.map(
    (result) =>
      result.junit ?? {
        name: result.name,
        durationMs: result.durationMs,
        timestamp: new Date(),
        cases: [
          {
            name: result.name,
            durationMs: result.durationMs,
            ...(result.status === "skipped"
              ? {
                  failure: {
                    message: "skipped: the run stopped first (--bail or interrupted)",
                    details: "",
                  },
                }
              : {
                  failure: { message: result.error ?? result.status, details: result.error ?? "" },
                }),
          },
        ],
      },
  );
}

function jsonReport(summary: RunSummary): object {
  return {
    ok: summary.ok,
    durationMs: Math.round(summary.durationMs),
    counts: counts(summary.results),
    tests: summary.results.map((result) => ({
      name: result.name,
      file: result.file,
      status: result.status,
      durationMs: Math.round(result.durationMs),
      outputDir: result.outputDir,
      ...(result.error ? { error: result.error } : {}),
      subtests: (result.junit?.cases ?? []).map((testCase) => ({
        name: testCase.name,
        ok: !testCase.failure,
        durationMs: Math.round(testCase.durationMs),
        ...(testCase.failure ? { error: testCase.failure.message } : {}),
      })),
    })),
  };
}

function listReport(summary: RunSummary): string {
  const rows = summary.results.map((result) => [
    result.status,
    formatMs(result.durationMs),
    result.name,
    shownPath(result.outputDir),
  ]);
  const widths = [0, 1, 2].map((column) =>
    Math.max(0, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const lines = rows.map((row) =>
    row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column] ?? 0) : cell)).join("  "),
  );
  const total = Object.entries(counts(summary.results))
    .map(([status, count]) => `${count} ${status}`)
    .join(", ");
  const tests = `${summary.results.length} test${summary.results.length === 1 ? "" : "s"}`;
  return [
    ...lines,
    `${tests}${total ? `: ${total}` : ""} in ${formatMs(summary.durationMs)}`,
    "",
  ].join("\n");
}

/** `path` from the working folder when it is inside it, else in full. */
function shownPath(path: string): string {
  const fromCwd = relative(process.cwd(), path);
  return fromCwd.startsWith("..") || isAbsolute(fromCwd) ? path : fromCwd || ".";
}

function counts(results: readonly TestResult[]): Record<string, number> {
  const byStatus: Record<string, number> = {};
  for (const result of results) byStatus[result.status] = (byStatus[result.status] ?? 0) + 1;
  return byStatus;
}
