// The Node.js version check, and both entry points (the `corral` command and `import "corral"`)
// running it on an older Node.js before anything that needs Node.js 24 is linked. Uses the built
// package in dist/ and the system's Node.js when it is older than 24.

import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { unsupportedNodeMessage } from "../../src/node-version.ts";
import { temporaryDir } from "../helpers/cli.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "dist/cli/bin.js");
const OLD_NODE = "/usr/bin/node";
const oldNodeVersion = versionOf(OLD_NODE);
const hasOldNode = oldNodeVersion !== undefined && Number(oldNodeVersion.split(".")[0]) < 24;

function versionOf(node: string): string | undefined {
  const result = spawnSync(node, ["--version"], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim().replace(/^v/, "") : undefined;
}

/** A project folder whose node_modules/corral is this package, as an install would make it. */
function projectUsingCorral(): string {
  const project = temporaryDir("corral-node-version-");
  mkdirSync(join(project, "node_modules"));
  symlinkSync(ROOT, join(project, "node_modules/corral"));
  return project;
}

describe("unsupportedNodeMessage", () => {
  it("accepts Node.js 24 and newer", () => {
    for (const version of ["24.0.0", "24.21.0", "25.2.1", "100.0.0"]) {
      expect(unsupportedNodeMessage(version, "/usr/bin/node")).toBeUndefined();
    }
  });

  it("refuses older versions, naming the version, the binary and how to get Node.js 24", () => {
    for (const version of ["22.15.0", "20.20.2", "18.19.0"]) {
      const message = unsupportedNodeMessage(version, "/opt/old/bin/node");
      expect(message).toContain(
        `corral needs Node.js 24 or newer (this is Node.js ${version}, /opt/old/bin/node).`,
      );
      expect(message).toContain("`npm i -D node@24`");
    }
  });
});

describe.skipIf(!hasOldNode)(`on the system's Node.js ${oldNodeVersion} (${OLD_NODE})`, () => {
  const expected = `corral needs Node.js 24 or newer (this is Node.js ${oldNodeVersion}, ${OLD_NODE}).`;

  it("the corral command says which Node.js it needs and exits 1, --help included", () => {
    for (const args of [["--help"], ["doctor"], []]) {
      const result = spawnSync(OLD_NODE, [BIN, ...args], { encoding: "utf8" });
      expect(result.stderr.startsWith(`${expected}\n`), result.stderr).toBe(true);
      expect(result.stderr).toContain("`npm i -D node@24`");
      expect(result.stderr).not.toContain("SyntaxError");
      expect(result.stdout).toBe("");
      expect(result.status).toBe(1);
    }
  });

  it('import("corral") from a project fails with the same message, not a link error', () => {
    const project = projectUsingCorral();
    for (const script of [
      ["-e", 'import("corral")'],
      ["--input-type=module", "-e", 'import { Machine } from "corral"; new Machine();'],
    ]) {
      const result = spawnSync(OLD_NODE, script, { cwd: project, encoding: "utf8" });
      expect(result.stderr).toContain(`CorralError: ${expected}`);
      expect(result.stderr).toContain("CORRAL_HOST_TOOL_MISSING");
      expect(result.stderr).not.toContain("SyntaxError");
      expect(result.status).toBe(1);
    }
  });
});

describe("on this Node.js", () => {
  it("the corral command runs", () => {
    const result = spawnSync(process.execPath, [BIN, "--help"], { encoding: "utf8" });
    expect(result.stdout).toContain("Usage: corral");
    expect(result.status).toBe(0);
  });

  it('import("corral") from a project gives the API', () => {
    const result = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'import { Machine } from "corral"; console.log(typeof Machine);',
      ],
      { cwd: projectUsingCorral(), encoding: "utf8" },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("function\n");
  });
});
