// The state database's schema, as an ordered list of migrations, and the code that applies them.
// `PRAGMA user_version` is the number of migrations applied. A shipped migration is never edited:
// a change to the schema is a new migration at the end of the list (see README.md).

import type { DatabaseSync } from "node:sqlite";
import { CorralError, ErrorCodes } from "../errors.ts";

export interface Migration {
  /** Its place in the list, from 1: the user_version once it is applied. */
  version: number;
  /** What it does, for error messages. */
  name: string;
  /** The statements, run in one transaction. */
  sql: string;
}

/** `PRAGMA application_id` of corral's state database: "corl" in ASCII. */
export const APPLICATION_ID = 0x636f726c;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "vms, labels, snapshots, images, templates, events and jobs",
    sql: `
      PRAGMA application_id = ${APPLICATION_ID};

      CREATE TABLE images (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        kind       TEXT NOT NULL CHECK (kind IN ('built', 'imported')),
        recipe     TEXT CHECK ((kind = 'built') = (recipe IS NOT NULL)),
        format     TEXT NOT NULL CHECK (format IN ('qcow2', 'raw', 'iso')),
        path       TEXT NOT NULL UNIQUE,
        sha256     TEXT NOT NULL CHECK (length(sha256) = 64),
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        created_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE templates (
        name       TEXT PRIMARY KEY,
        source     TEXT NOT NULL CHECK (source IN ('builtin', 'user')),
        body       TEXT NOT NULL CHECK (json_valid(body) AND json_type(body) = 'object'),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE vms (
        id                 TEXT PRIMARY KEY,
        name               TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
        template           TEXT,
        image_id           TEXT REFERENCES images (id) ON DELETE RESTRICT,
        source_snapshot_id TEXT REFERENCES snapshots (id) ON DELETE RESTRICT,
        os                 TEXT NOT NULL CHECK (os IN ('linux', 'windows')),
        spec               TEXT NOT NULL CHECK (json_valid(spec) AND json_type(spec) = 'object'),
        state              TEXT NOT NULL,
        state_reason       TEXT,
        state_changed_at   TEXT NOT NULL,
        operation          TEXT,
        state_dir          TEXT NOT NULL UNIQUE,
        ownership          TEXT CHECK (ownership IS NULL OR json_valid(ownership)),
        created_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL
      ) STRICT;
      CREATE INDEX vms_by_state ON vms (state);
      CREATE INDEX vms_by_image ON vms (image_id);
      CREATE INDEX vms_by_source_snapshot ON vms (source_snapshot_id);

      CREATE TABLE vm_labels (
        vm_id TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
        key   TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (vm_id, key)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX vm_labels_by_key_value ON vm_labels (key, value);

      CREATE TABLE snapshots (
        id         TEXT PRIMARY KEY,
        vm_id      TEXT REFERENCES vms (id) ON DELETE SET NULL,
        vm_name    TEXT NOT NULL,
        name       TEXT NOT NULL,
        image_id   TEXT REFERENCES images (id) ON DELETE RESTRICT,
        os         TEXT NOT NULL CHECK (os IN ('linux', 'windows')),
        spec       TEXT NOT NULL CHECK (json_valid(spec) AND json_type(spec) = 'object'),
        folder     TEXT NOT NULL UNIQUE,
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        created_at TEXT NOT NULL,
        UNIQUE (vm_id, name)
      ) STRICT;
      CREATE INDEX snapshots_by_image ON snapshots (image_id);

      CREATE TABLE events (
        id    INTEGER PRIMARY KEY AUTOINCREMENT,
        time  TEXT NOT NULL,
        vm_id TEXT,
        type  TEXT NOT NULL,
        data  TEXT NOT NULL CHECK (json_valid(data))
      ) STRICT;
      CREATE INDEX events_by_vm ON events (vm_id, id);

      CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        subject     TEXT,
        state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
        progress    TEXT CHECK (progress IS NULL OR json_valid(progress)),
        result      TEXT CHECK (result IS NULL OR json_valid(result)),
        error_code  TEXT,
        error       TEXT,
        created_at  TEXT NOT NULL,
        started_at  TEXT,
        finished_at TEXT,
        updated_at  TEXT NOT NULL
      ) STRICT;
      CREATE INDEX jobs_by_state ON jobs (state);
      CREATE UNIQUE INDEX jobs_one_active_per_subject ON jobs (kind, subject)
        WHERE state IN ('queued', 'running');
    `,
  },
  {
    version: 2,
    name: "networks, NICs and port forwards",
    sql: `
      CREATE TABLE networks (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
        subnet     TEXT NOT NULL UNIQUE,
        gateway    TEXT NOT NULL,
        dhcp_start TEXT NOT NULL,
        dhcp_end   TEXT NOT NULL,
        nat        INTEGER NOT NULL CHECK (nat IN (0, 1)),
        isolated   INTEGER NOT NULL CHECK (isolated IN (0, 1)),
        bridge     TEXT NOT NULL UNIQUE CHECK (length(bridge) BETWEEN 1 AND 15),
        bridge_mac TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
      ) STRICT;

      CREATE TABLE nics (
        id         TEXT PRIMARY KEY,
        vm_id      TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
        idx        INTEGER NOT NULL CHECK (idx >= 0),
        network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE RESTRICT,
        mac        TEXT NOT NULL UNIQUE,
        address    TEXT NOT NULL,
        tap        TEXT NOT NULL UNIQUE CHECK (length(tap) BETWEEN 1 AND 15),
        created_at TEXT NOT NULL,
        UNIQUE (vm_id, idx),
        UNIQUE (network_id, address)
      ) STRICT;

      CREATE TABLE port_forwards (
        id           TEXT PRIMARY KEY,
        vm_id        TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
        nic_id       TEXT NOT NULL REFERENCES nics (id) ON DELETE CASCADE,
        host_address TEXT NOT NULL,
        host_port    INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
        protocol     TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
        guest_port   INTEGER NOT NULL CHECK (guest_port BETWEEN 1 AND 65535),
        created_at   TEXT NOT NULL,
        UNIQUE (host_address, host_port, protocol)
      ) STRICT;
      CREATE INDEX port_forwards_by_vm ON port_forwards (vm_id);
      CREATE INDEX port_forwards_by_nic ON port_forwards (nic_id);
      CREATE INDEX port_forwards_by_port ON port_forwards (host_port, protocol);
    `,
  },
  {
    version: 3,
    name: "port forwards of the user-mode NIC (no NIC row)",
    // SQLite cannot drop a NOT NULL: the table is made again (nothing refers to it).
    sql: `
      CREATE TABLE port_forwards_new (
        id           TEXT PRIMARY KEY,
        vm_id        TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
        nic_id       TEXT REFERENCES nics (id) ON DELETE CASCADE,
        host_address TEXT NOT NULL,
        host_port    INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
        protocol     TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
        guest_port   INTEGER NOT NULL CHECK (guest_port BETWEEN 1 AND 65535),
        created_at   TEXT NOT NULL,
        UNIQUE (host_address, host_port, protocol)
      ) STRICT;
      INSERT INTO port_forwards_new SELECT id, vm_id, nic_id, host_address, host_port, protocol,
        guest_port, created_at FROM port_forwards;
      DROP TABLE port_forwards;
      ALTER TABLE port_forwards_new RENAME TO port_forwards;
      CREATE INDEX port_forwards_by_vm ON port_forwards (vm_id);
      CREATE INDEX port_forwards_by_nic ON port_forwards (nic_id);
      CREATE INDEX port_forwards_by_port ON port_forwards (host_port, protocol);
    `,
  },
];

/** What migrate did: the schema version before and after. */
export interface MigrateResult {
  from: number;
  to: number;
}

/**
 * Applies the migrations of `migrations` that `db` lacks, each in its own transaction. Safe when
 * several processes open a new database at once: each migration re-reads the version once it
 * holds the write lock. Throws CORRAL_CONFLICT when the database is newer than `migrations` (it
 * is never downgraded) or when a migration fails (that migration is rolled back whole).
 */
export function migrate(
  db: DatabaseSync,
  path: string,
  migrations: readonly Migration[] = MIGRATIONS,
): MigrateResult {
  const from = userVersion(db);
  requireKnown(from, path, migrations);
  // Off while migrating, as SQLite's procedure for schema changes asks
  // (https://www.sqlite.org/lang_altertable.html#otheralter): rebuilding a table drops the old
  // one, and with foreign keys on that would cascade into the rows that refer to it. It can only
  // be switched outside a transaction; each migration is checked before it commits instead.
  const foreignKeys = (db.prepare("PRAGMA foreign_keys").get() as { foreign_keys: number })
    .foreign_keys;
  db.exec("PRAGMA foreign_keys = OFF");
  try {
    for (const migration of migrations.slice(from)) apply(db, path, migration, migrations);
  } finally {
    db.exec(`PRAGMA foreign_keys = ${foreignKeys}`);
  }
  return { from, to: userVersion(db) };
}

function apply(
  db: DatabaseSync,
  path: string,
  migration: Migration,
  migrations: readonly Migration[],
): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    // Another process may have applied it while this one waited for the write lock.
    const version = userVersion(db);
    requireKnown(version, path, migrations);
    if (version < migration.version) {
      db.exec(migration.sql);
      requireForeignKeysHold(db);
      db.exec(`PRAGMA user_version = ${migration.version}`);
    }
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    if (error instanceof CorralError) throw error;
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `${path}: migration ${migration.version} (${migration.name}) failed and was rolled back: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The schema version of `db`: how many migrations it has had. */
export function userVersion(db: DatabaseSync): number {
  return Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
}

function requireKnown(version: number, path: string, migrations: readonly Migration[]): void {
  if (version <= migrations.length) return;
  throw new CorralError(
    ErrorCodes.CONFLICT,
    `${path} has schema version ${version}, newer than this corral knows (${migrations.length}): a newer corral wrote it. Run that version of corral or a later one; corral never downgrades its database`,
  );
}

/** A migration must leave every foreign key pointing at a row. */
function requireForeignKeysHold(db: DatabaseSync): void {
  const broken = db.prepare("PRAGMA foreign_key_check").all() as { table: string }[];
  if (broken.length > 0) {
    const tables = [...new Set(broken.map((row) => row.table))].join(", ");
    throw new Error(`it leaves ${broken.length} rows of ${tables} with a dangling foreign key`);
  }
}
