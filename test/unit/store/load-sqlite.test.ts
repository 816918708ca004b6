import { describe, expect, it, onTestFinished } from "vitest";
import { loadSqlite, withoutSqliteWarning } from "../../../src/store/load-sqlite.ts";

describe("loadSqlite", () => {
  it("gives node:sqlite", () => {
    const { DatabaseSync } = loadSqlite();
    const db = new DatabaseSync(":memory:");
    expect(db.prepare("SELECT 1 + 1 AS two").get()).toEqual({ two: 2 });
    db.close();
  });

  it("drops SQLite's experimental warning (Node.js 24 before 24.15) and nothing else", () => {
    // Records warnings in place of printing them, beneath the filter.
    const seen: string[] = [];
    const original = process.emitWarning;
    const recorder = ((warning: string, typeOrOptions: string | { type: string }) => {
      const type = typeof typeOrOptions === "string" ? typeOrOptions : typeOrOptions.type;
      seen.push(`${type}: ${warning}`);
    }) as typeof process.emitWarning;
    process.emitWarning = recorder;
    onTestFinished(() => {
      process.emitWarning = original;
    });
    withoutSqliteWarning(() => {
      // What node:sqlite emits when it loads on those versions (lib/internal/util.js).
      process.emitWarning(
        "SQLite is an experimental feature and might change at any time",
        "ExperimentalWarning",
      );
      process.emitWarning("Something else is experimental", "ExperimentalWarning");
      process.emitWarning("SQLite is mentioned here", { type: "DeprecationWarning" });
    });
    expect(process.emitWarning).toBe(recorder);
    process.emitWarning("SQLite is an experimental feature and might change at any time", {
      type: "ExperimentalWarning",
    });
    expect(seen).toEqual([
      "ExperimentalWarning: Something else is experimental",
      "DeprecationWarning: SQLite is mentioned here",
      "ExperimentalWarning: SQLite is an experimental feature and might change at any time",
    ]);
  });
});
