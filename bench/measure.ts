// What every benchmark area shares: logging, timing, medians, running the CLI, and the results
// that the report prints.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

/** Every figure measured in this run, by key; `--json` prints this object. */
export const results: Record<string, number | string> = {};

export function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** How long `fn` took, in ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Runs the built CLI; rejects unless it exits `exitCode` (default 0). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  exitCode = 0,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    child.on("exit", (code) =>
      code === exitCode ? resolve() : reject(new Error(`corral ${args.join(" ")}: exit ${code}`)),
    );
  });
}
