// Loads node:sqlite without its ExperimentalWarning. Node.js 24 before 24.15 prints one on stderr
// when the module is first loaded (it became a release candidate, without the warning, in 24.15;
// corral accepts any Node.js 24), which would land in the output of the commands that open the
// state database. Only that one warning is dropped; any other passes through.

import type * as Sqlite from "node:sqlite";

/** The node:sqlite module, loaded on first use. */
export function loadSqlite(): typeof Sqlite {
  return withoutSqliteWarning(() => process.getBuiltinModule("node:sqlite"));
}

/** Runs `load` with SQLite's experimental-feature warning filtered out of `process.emitWarning`. */
export function withoutSqliteWarning<T>(load: () => T): T {
  const emitWarning = process.emitWarning;
  process.emitWarning = function filtered(this: unknown, ...args: unknown[]): void {
    if (isSqliteWarning(args)) return;
    Reflect.apply(emitWarning, process, args);
  } as typeof process.emitWarning;
  try {
    return load();
  } finally {
    process.emitWarning = emitWarning;
  }
}

function isSqliteWarning([warning, typeOrOptions]: unknown[]): boolean {
  const type =
    typeof typeOrOptions === "string"
      ? typeOrOptions
      : (typeOrOptions as { type?: unknown } | undefined)?.type;
  const message = warning instanceof Error ? warning.message : String(warning);
  return type === "ExperimentalWarning" && message.startsWith("SQLite ");
}
