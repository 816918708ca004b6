// JUnit XML for a test run: one test suite per test file, one test case per subtest; a run of
// many files is one report.

export interface JUnitCase {
  name: string;
  durationMs: number;
  /** Set when the case failed: the error's message and its details (stack, console tail). */
  failure?: { message: string; details: string };
}

export interface JUnitSuite {
  name: string;
  durationMs: number;
  timestamp: Date;
  cases: JUnitCase[];
}

/** The JUnit XML of one suite, or of every suite of a run in one `<testsuites>`. */
export function renderJUnit(suites: JUnitSuite | readonly JUnitSuite[]): string {
  const all: readonly JUnitSuite[] = Array.isArray(suites) ? suites : [suites as JUnitSuite];
  const failures = (suite: JUnitSuite) => suite.cases.filter((testCase) => testCase.failure).length;
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const tests = all.reduce((sum, suite) => sum + suite.cases.length, 0);
  const failed = all.reduce((sum, suite) => sum + failures(suite), 0);
  const time = all.reduce((sum, suite) => sum + suite.durationMs, 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${tests}" failures="${failed}" time="${seconds(time)}">`,
    ...all.flatMap((suite) => [
      `  <testsuite name="${xml(suite.name)}" tests="${suite.cases.length}" failures="${failures(suite)}" errors="0" skipped="0" time="${seconds(suite.durationMs)}" timestamp="${suite.timestamp.toISOString().replace(/\.\d+Z$/, "")}">`,
      ...suite.cases.map((testCase) => {
        const open = `    <testcase classname="${xml(suite.name)}" name="${xml(testCase.name)}" time="${seconds(testCase.durationMs)}"`;
        if (!testCase.failure) return `${open}/>`;
        const { message, details } = testCase.failure;
        return `${open}>\n      <failure message="${xml(message)}">${xml(details)}</failure>\n    </testcase>`;
      }),
      "  </testsuite>",
    ]),
    "</testsuites>",
    "",
  ].join("\n");
}

/** Escapes text for XML attributes and content, dropping characters XML 1.0 cannot hold. */
function xml(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
