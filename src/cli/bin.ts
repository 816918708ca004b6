#!/usr/bin/env node
// The `corral` command's entry: checks the Node.js version, then loads the CLI. main.ts is loaded
// dynamically because its static imports would be linked before any check here could run.

import { unsupportedNodeMessage } from "../node-version.ts";

const unsupported = unsupportedNodeMessage(process.versions.node, process.execPath);
if (unsupported === undefined) {
  await import("./main.ts");
} else {
  process.stderr.write(`${unsupported}\n`);
  process.exitCode = 1;
}
