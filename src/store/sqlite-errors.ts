// Reading node:sqlite's errors: which unique constraint failed, and whether the database was
// busy. The repositories turn these into corral's error codes with messages that name the row.
// Other constraints (foreign keys, checks) are checked in the repositories first, with messages
// of their own; the schema's are the backstop.

import { CorralError, ErrorCodes } from "../errors.ts";

interface SqliteError extends Error {
  code: "ERR_SQLITE_ERROR";
  /** SQLite's extended result code (https://www.sqlite.org/rescode.html). */
  errcode: number;
}

const SQLITE_BUSY = 5;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

function isSqliteError(error: unknown): error is SqliteError {
  return (
    error instanceof Error &&
    (error as Partial<SqliteError>).code === "ERR_SQLITE_ERROR" &&
    typeof (error as Partial<SqliteError>).errcode === "number"
  );
}

/**
 * The columns of the unique constraint (or primary key) that `error` reports as violated, as
 * `table.column` joined by ", " ("vms.name"); undefined for any other error.
 */
export function uniqueColumns(error: unknown): string | undefined {
  if (!isSqliteError(error)) return undefined;
  if (error.errcode !== SQLITE_CONSTRAINT_UNIQUE && error.errcode !== SQLITE_CONSTRAINT_PRIMARYKEY)
    return undefined;
  return /constraint failed: (.+)$/.exec(error.message)?.[1];
}

/**
 * CORRAL_CONFLICT with the message that `messages` gives for the unique constraint `error`
 * reports (by its columns, "vms.name"); `error` itself when it is another error.
 */
export function uniqueConflict(error: unknown, messages: Record<string, string>): unknown {
  const columns = uniqueColumns(error);
  const message = columns === undefined ? undefined : messages[columns];
  return message === undefined
    ? error
    : new CorralError(ErrorCodes.CONFLICT, message, { cause: error });
}

/** Whether `error` says the database stayed locked by another connection past the busy timeout. */
export function isBusy(error: unknown): boolean {
  return isSqliteError(error) && (error.errcode & 0xff) === SQLITE_BUSY;
}
