// What `npm pack` puts in the package: the built code with the sources its maps point at, the
// recipes, the built-in templates, the examples and docs the README links to, the license;
// nothing of the repository's tests, CI or tooling. Lists the files of the current dist/
// (`npm run build` first).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

let files: Set<string>;

beforeAll(() => {
  // --ignore-scripts: no prepack build, so the test lists what is there without rebuilding it.
  const result = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  expect(result.status, result.stderr).toBe(0);
  const [pack] = JSON.parse(result.stdout) as [{ files: { path: string }[] }];
  files = new Set(pack.files.map((file) => file.path));
});

function packageJson(): {
  bin: Record<string, string>;
  exports: { ".": { types: string; default: string } };
} {
  return JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
}

it("ships the license, the entry points, recipes, examples and docs", () => {
  for (const path of [
    "LICENSE",
    "README.md",
    "package.json",
    "dist/entry.js",
    "dist/index.js",
    "dist/index.d.ts",
    "dist/cli/bin.js",
    "dist/cli/main.js",
    "recipes/debian-12/recipe.json",
    "recipes/debian-12-full/recipe.json",
    "templates/linux-default.yaml",
    "templates/linux-microvm.yaml",
    "templates/windows-default.yaml",
    "examples/two-machines.ts",
    "examples/two-machines-start-scripts.ts",
    "examples/vitest/two-machines.test.ts",
    "examples/node-test/two-machines.test.ts",
    "docs/errors.md",
    "docs/nixos-parity.md",
  ]) {
    expect(files, path).toContain(path);
  }
});

it("ships what package.json points at, the command with its shebang", () => {
  const pkg = packageJson();
  const targets = [...Object.values(pkg.bin), pkg.exports["."].types, pkg.exports["."].default];
  for (const target of targets) expect(files, target).toContain(posix.normalize(target));
  for (const bin of Object.values(pkg.bin)) {
    expect(readFileSync(join(ROOT, bin), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
  }
});

it("ships no tests, CI, benchmarks or repository tooling", () => {
  const unwanted = [...files].filter(
    (path) =>
      /^(test|\.ci|bench|node_modules|corral-results|bench-results)\//.test(path) ||
      /^(tsconfig.*|vitest\.config\.ts|biome\.json|package-lock\.json|\.gitignore)$/.test(path),
  );
  expect(unwanted).toEqual([]);
});

it("the source maps of every module point at its shipped source", () => {
  const sources = [...files].filter((path) => path.startsWith("src/") && path.endsWith(".ts"));
  expect(sources).toContain("src/index.ts");
  for (const source of sources) {
    const built = source.replace(/^src\//, "dist/").replace(/\.ts$/, "");
    for (const map of [`${built}.js.map`, `${built}.d.ts.map`]) {
      expect(files, map).toContain(map);
      const { sources: mapped } = JSON.parse(readFileSync(join(ROOT, map), "utf8")) as {
        sources: string[];
      };
      expect(mapped.map((path) => posix.join(posix.dirname(map), path))).toEqual([source]);
    }
  }
});
