import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type ErrorCode, ErrorCodes, httpStatus } from "../../src/errors.ts";

describe("error codes", () => {
  const doc = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
  const rows = [...doc.matchAll(/^\| `(CORRAL_[A-Z_]+)` +\| (\d{3}) +\|/gm)].map((match) => ({
    code: match[1] as ErrorCode,
    status: Number(match[2]),
  }));

  it("are all documented in docs/errors.md, and nothing else is", () => {
    expect(rows.map((row) => row.code).sort()).toEqual(Object.values(ErrorCodes).sort());
  });

  it("have the HTTP status in docs/errors.md that src/errors.ts declares", () => {
    for (const { code, status } of rows)
      expect({ code, status }).toEqual({ code, status: httpStatus(code) });
  });
});
