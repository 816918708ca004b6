// The interactive mode: a REPL (top-level await) with the test's machines and helpers in scope,
// `testScript()` to run the test, `shellInteract(machine)` for a shell in a guest and
// `consoleInteract(machine)` for its serial console.

import { once } from "node:events";
import { createInterface } from "node:readline/promises";
import type { REPLServer } from "node:repl";
import type { Machine } from "../machine/machine.ts";
import { CONTEXT_KEYS, type Driver } from "./driver.ts";
import type { TestFunction } from "./test-definition.ts";

/** What the REPL adds to the test's context. */
const REPL_KEYS = ["testScript", "shellInteract", "consoleInteract"];

export async function interact(driver: Driver, test: TestFunction): Promise<void> {
  const context = driver.context();
  process.stderr.write(
    `corral interactive mode. In scope: ${[...driver.machines.map((m) => m.name), ...CONTEXT_KEYS, ...REPL_KEYS].join(", ")}\n` +
      "`await testScript()` runs the test; `await shellInteract(machine)` opens a guest shell, `await consoleInteract(machine)` its serial console; Ctrl-D quits and stops every VM.\n",
  );
  // Loaded here: only `--interactive` needs it.
  const { start } = await import("node:repl");
  const repl = start({ prompt: "corral> ", terminal: process.stdin.isTTY });
  Object.assign(repl.context, context, {
    testScript: () => test(context as never),
    shellInteract: (machine: Machine) => shellInteract(machine, repl),
    consoleInteract: (machine: Machine) => consoleInteract(machine, repl),
    ...(driver.machines.length === 1 ? { machine: driver.machines[0] } : {}),
  });
  await once(repl, "exit");
}

/**
 * Types each line read on `machine`'s serial console and shows what the console prints, until
 * end of input (Ctrl-D), as NixOS's `console_interact()`.
 */
async function consoleInteract(machine: Machine, repl: REPLServer): Promise<void> {
  repl.pause();
  const lines = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  const unsubscribe = machine.onConsoleLine((line) => process.stdout.write(`${line}\n`));
  process.stderr.write(`${machine.name}: serial console; Ctrl-D returns to corral\n`);
  try {
    for await (const line of lines) machine.sendConsole(`${line}\n`);
  } finally {
    unsubscribe();
    lines.close();
    repl.resume();
    repl.displayPrompt();
  }
}

/** Reads command lines and runs each in `machine`'s shell until `exit` or end of input. */
async function shellInteract(machine: Machine, repl: REPLServer): Promise<void> {
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
