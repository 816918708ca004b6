// The interactive mode: a REPL (top-level await) with the test's machines and helpers in scope,
// `testScript()` to run the test, and `shellInteract(machine)` for a shell in a guest.

import { once } from "node:events";
import { createInterface } from "node:readline/promises";
import { start } from "node:repl";
import type { Machine } from "../machine/machine.ts";
import { CONTEXT_KEYS, type Driver } from "./driver.ts";
import type { TestFunction } from "./test-definition.ts";

/** What the REPL adds to the test's context. */
const REPL_KEYS = ["testScript", "shellInteract"];

export async function interact(driver: Driver, test: TestFunction): Promise<void> {
  const context = driver.context();
  process.stderr.write(
    `corral interactive mode. In scope: ${[...driver.machines.map((m) => m.name), ...CONTEXT_KEYS, ...REPL_KEYS].join(", ")}\n` +
      "`await testScript()` runs the test; `await shellInteract(machine)` opens a guest shell; Ctrl-D quits and stops every VM.\n",
  );
  const repl = start({ prompt: "corral> ", terminal: process.stdin.isTTY });
  Object.assign(repl.context, context, {
    testScript: () => test(context as never),
    shellInteract: (machine: Machine) => shellInteract(machine, repl),
  });
  await once(repl, "exit");
}

/** Reads command lines and runs each in `machine`'s shell until `exit` or end of input. */
async function shellInteract(machine: Machine, repl: ReturnType<typeof start>): Promise<void> {
  repl.pause();
  const lines = createInterface({ input: process.stdin, output: process.stderr });
  process.stderr.write(`${machine.name}: guest shell; \`exit\` or Ctrl-D returns to corral\n`);
  try {
    for (;;) {
      const line = await lines.question(`${machine.name}$ `).catch(() => "exit");
      if (line.trim() === "exit") break;
      if (!line.trim()) continue;
      const result = await machine.execute(line, {
        onStdout: (chunk) => process.stdout.write(chunk),
        onStderr: (chunk) => process.stderr.write(chunk),
      });
      if (result.exitCode !== 0) process.stderr.write(`(exit code ${result.exitCode})\n`);
    }
  } finally {
    lines.close();
    repl.resume();
    repl.displayPrompt();
  }
}
