// JUnit XML for a test run: one test suite (the test file), one test case per subtest.

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

export function renderJUnit(suite: JUnitSuite): string {
  const failures = suite.cases.filter((testCase) => testCase.failure).length;
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const cases = suite.cases.map((testCase) => {
    const open = `    <testcase classname="${xml(suite.name)}" name="${xml(testCase.name)}" time="${seconds(testCase.durationMs)}"`;
    if (!testCase.failure) return `${open}/>`;
    const { message, details } = testCase.failure;
    return `${open}>\n      <failure message="${xml(message)}">${xml(details)}</failure>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${suite.cases.length}" failures="${failures}" time="${seconds(suite.durationMs)}">`,
    `  <testsuite name="${xml(suite.name)}" tests="${suite.cases.length}" failures="${failures}" errors="0" skipped="0" time="${seconds(suite.durationMs)}" timestamp="${suite.timestamp.toISOString().replace(/\.\d+Z$/, "")}">`,
    ...cases,
    "  </testsuite>",
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
