import { describe, expect, it } from "vitest";
import { renderJUnit } from "../../../src/driver/junit.ts";

describe("renderJUnit", () => {
  it("writes one test case per subtest, failures with message and details, escaped", () => {
    const xml = renderJUnit({
      name: "two-machines.ts",
      durationMs: 1500,
      timestamp: new Date("2026-11-21T10:00:00.123Z"),
      cases: [
        { name: "boots", durationMs: 1000 },
        {
          name: 'a "quoted" <name> & more',
          durationMs: 500,
          failure: { message: "expected <a> & got\u0001 b", details: "Error: x\n    at t.ts:3:1" },
        },
      ],
    });
    expect(xml).toBe(
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<testsuites tests="2" failures="1" time="1.500">',
        '  <testsuite name="two-machines.ts" tests="2" failures="1" errors="0" skipped="0" time="1.500" timestamp="2026-11-21T10:00:00">',
        '    <testcase classname="two-machines.ts" name="boots" time="1.000"/>',
        '    <testcase classname="two-machines.ts" name="a &quot;quoted&quot; &lt;name&gt; &amp; more" time="0.500">',
        '      <failure message="expected &lt;a&gt; &amp; got b">Error: x\n    at t.ts:3:1</failure>',
        "    </testcase>",
        "  </testsuite>",
        "</testsuites>",
        "",
      ].join("\n"),
    );
  });
});
