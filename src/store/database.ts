// The state database: one SQLite file (node:sqlite) in WAL mode with foreign keys on, migrated to
// this corral's schema when opened. Repositories run their statements through it: prepared once,
// writes in transactions that take the write lock at once.

import { join } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { CorralError, ErrorCodes } from "../errors.ts";
import { makeDirs } from "../host/make-dirs.ts";
import { stateDir } from "../host/paths.ts";
import { loadSqlite } from "./load-sqlite.ts";
import { APPLICATION_ID, migrate } from "./migrations.ts";
import { isBusy } from "./sqlite-errors.ts";

/** The database's file name in the state folder. */
export const DATABASE_FILE = "corral.db";

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export interface OpenDatabaseOptions {
  /** How long a write waits for another connection's write lock before failing; default 5 s. */
  busyTimeoutMs?: number;
}

export interface OpenStateDatabaseOptions extends OpenDatabaseOptions {
  /** The state folder; default `$XDG_STATE_HOME/corral` (stateDir()). Created 0700. */
  dir?: string;
}

/**
 * Opens (creating it if needed) the state database in the state folder, which is created with
 * mode 0700 when missing. Throws what Database.open throws, and CORRAL_INVALID_ARGUMENT when the
 * folder cannot be created.
 */
export async function openStateDatabase(options: OpenStateDatabaseOptions = {}): Promise<Database> {
  const dir = options.dir ?? stateDir();
  await makeDirs(dir, "state folder", 0o700);
  return Database.open(join(dir, DATABASE_FILE), options);
}

export class Database implements Disposable {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly #sqlite: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #savepoints = 0;

  private constructor(path: string, sqlite: DatabaseSync, busyTimeoutMs: number) {
    this.path = path;
    this.#sqlite = sqlite;
    this.busyTimeoutMs = busyTimeoutMs;
  }

  /**
   * Opens the database file at `path` (its folder must exist) and applies the migrations it
   * lacks. Throws CORRAL_INVALID_ARGUMENT when the file is not corral's state database, and
   * CORRAL_CONFLICT when it is newer than this corral or stays locked past the busy timeout.
   */
  static open(path: string, options: OpenDatabaseOptions = {}): Database {
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    const { DatabaseSync } = loadSqlite();
    let sqlite: DatabaseSync;
    try {
      sqlite = new DatabaseSync(path, {
        enableForeignKeyConstraints: true,
        timeout: busyTimeoutMs,
      });
    } catch (error) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `the state database ${path} cannot be opened: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const database = new Database(path, sqlite, busyTimeoutMs);
    try {
      database.#locked(() => database.#requireCorralDatabase());
      database.#locked(() => {
        sqlite.exec("PRAGMA journal_mode = WAL");
        // In WAL mode NORMAL cannot corrupt the file; a power cut may lose the last commits,
        // which describe VMs that the same power cut ended anyway.
        sqlite.exec("PRAGMA synchronous = NORMAL");
        migrate(sqlite, path);
      });
    } catch (error) {
      database.close();
      throw error;
    }
    return database;
  }

  /** The prepared statement for `sql`, prepared on first use. */
  prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#sqlite.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** The value of `PRAGMA name`. */
  pragma(name: string): unknown {
    const row = this.#sqlite.prepare(`PRAGMA ${name}`).get();
    return row === undefined ? undefined : Object.values(row)[0];
  }

  /**
   * Runs `work` in a transaction that holds the write lock from its start, so that what it reads
   * is still true when it writes; commits if it returns, rolls back if it throws. Nested calls
   * are savepoints of the outer transaction. `work` must be synchronous. Throws CORRAL_CONFLICT
   * when another connection holds the write lock past the busy timeout.
   */
  transaction<T>(work: () => T): T {
    const savepoint = this.#sqlite.isTransaction ? `s${++this.#savepoints}` : undefined;
    this.#locked(() => this.#sqlite.exec(savepoint ? `SAVEPOINT ${savepoint}` : "BEGIN IMMEDIATE"));
    try {
      const result = work();
      if (result instanceof Promise) {
        throw new TypeError("Database.transaction: the work must be synchronous");
      }
      this.#locked(() => this.#sqlite.exec(savepoint ? `RELEASE ${savepoint}` : "COMMIT"));
      return result;
    } catch (error) {
      if (savepoint) this.#sqlite.exec(`ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      else if (this.#sqlite.isTransaction) this.#sqlite.exec("ROLLBACK");
      throw error;
    } finally {
      if (savepoint) this.#savepoints--;
    }
  }

  /** Whether the database is open: not closed yet. */
  get isOpen(): boolean {
    return this.#sqlite.isOpen;
  }

  /** Closes the database; closing it again does nothing. */
  close(): void {
    this.#statements.clear();
    if (this.#sqlite.isOpen) this.#sqlite.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #requireCorralDatabase(): void {
    let applicationId: unknown;
    let tables: number;
    try {
      // One read transaction, so that both answers come from one snapshot: another process
      // may be creating the schema (tables and application_id in one commit) meanwhile.
      this.#sqlite.exec("BEGIN");
      try {
        const row = this.#sqlite
          .prepare("SELECT count(*) AS count FROM sqlite_schema WHERE type = 'table'")
          .get() as { count: number };
        tables = row.count;
        applicationId = this.pragma("application_id");
      } finally {
        this.#sqlite.exec("COMMIT");
      }
    } catch (error) {
      if (isBusy(error)) throw error;
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `the state database ${this.path} cannot be read: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (applicationId === APPLICATION_ID || (applicationId === 0 && tables === 0)) return;
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${this.path} is not corral's state database but another program's SQLite file; move it away or pick another state folder`,
    );
  }

  /** Runs `work`, which takes the write lock, turning a lock held too long into CORRAL_CONFLICT. */
  #locked<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      if (!isBusy(error)) throw error;
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `the state database ${this.path} is locked by another process: it stayed busy for ${this.busyTimeoutMs} ms`,
        { cause: error },
      );
    }
  }
}
