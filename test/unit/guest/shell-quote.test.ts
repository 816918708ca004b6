import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { shellJoin } from "../../../src/guest/shell-quote.ts";

describe("shellJoin", () => {
  it("gives bash back the exact words", () => {
    const words = ["printf", "%s|", "a b", "it's", "$HOME", "", "*", "x\ny"];
    const result = spawnSync("bash", ["-c", shellJoin(words)], { encoding: "utf8" });
    expect(result.stdout).toBe("a b|it's|$HOME||*|x\ny|");
  });
});
