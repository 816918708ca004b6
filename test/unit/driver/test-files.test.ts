import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  defaultJobs,
  findTestFiles,
  grepTestFiles,
  parseShard,
  shardTestFiles,
} from "../../../src/driver/test-files.ts";
import { CorralError } from "../../../src/errors.ts";

const root = mkdtempSync(join(tmpdir(), "corral-test-files-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
for (const file of [
  "a/one.vm.ts",
  "a/two.vm.ts",
  "a/deep/three.vm.ts",
  "a/helper.ts",
  "a/four.test.ts",
  "a/node_modules/x.vm.ts",
  "b/one.vm.ts",
  "c.ts",
]) {
  mkdirSync(join(root, file, ".."), { recursive: true });
  writeFileSync(join(root, file), "");
}

describe("findTestFiles", () => {
  it("takes *.vm.ts under folders (not node_modules), named from the folder, sorted", async () => {
    const files = await findTestFiles(["a"], root);
    expect(files.map((file) => file.name)).toEqual(["deep/three", "one", "two"]);
    expect(files[0]?.path).toBe(join(root, "a/deep/three.vm.ts"));
  });

  it("names files from the working folder when two folders share a name, or given by name", async () => {
    const files = await findTestFiles(["a", "b", "c.ts"], root);
    expect(files.map((file) => file.name)).toEqual([
      "a/deep/three",
      "a/one",
      "a/two",
      "b/one",
      "c",
    ]);
  });

  it("throws CORRAL_NOT_FOUND for a path that does not exist", async () => {
    await expect(findTestFiles(["nope"], root)).rejects.toMatchObject({
      code: "CORRAL_NOT_FOUND",
    });
  });
});

describe("shards and --grep", () => {
  const files = ["a", "b", "c", "d", "e"].map((name) => ({ name, path: `/${name}` }));

  it("splits the sorted files into disjoint shards that cover them", () => {
    const shards = [1, 2, 3].map((index) =>
      shardTestFiles(files, { index, count: 3 }).map((file) => file.name),
    );
    expect(shards).toEqual([["a", "d"], ["b", "e"], ["c"]]);
    expect(shardTestFiles(files, { index: 1, count: 1 })).toEqual(files);
  });

  it("parses i/n and refuses anything else", () => {
    expect(parseShard("2/3")).toEqual({ index: 2, count: 3 });
    for (const bad of ["0/2", "3/2", "1/0", "1", "a/b", "-1/2"]) {
      expect(() => parseShard(bad)).toThrow(CorralError);
    }
  });

  it("greps names by regular expression and refuses a bad one", () => {
    expect(grepTestFiles(files, "^[bd]$").map((file) => file.name)).toEqual(["b", "d"]);
    expect(() => grepTestFiles(files, "(")).toThrow(/--grep "\(" is not a regular expression/);
  });

  it("defaults --jobs to at least 1", () => {
    expect(defaultJobs()).toBeGreaterThanOrEqual(1);
  });
});
