import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import {
  APPLICATION_ID,
  MIGRATIONS,
  type Migration,
  migrate,
  userVersion,
} from "../../../src/store/migrations.ts";
import { temporaryDir } from "../../helpers/cli.ts";

function freshDatabase(): { db: DatabaseSync; path: string } {
  const path = join(temporaryDir("corral-migrate-"), "test.db");
  const db = new DatabaseSync(path);
  onTestFinished(() => db.close());
  return { db, path };
}

function tables(db: DatabaseSync): string[] {
  const rows = db
    .prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .all() as { name: string }[];
  return rows.map((row) => row.name);
}

const notes: Migration[] = [
  { version: 1, name: "notes", sql: "CREATE TABLE notes (text TEXT NOT NULL) STRICT" },
];

describe("migrations", () => {
  it("are numbered 1, 2, 3… in order", () => {
    expect(MIGRATIONS.map((migration) => migration.version)).toEqual(
      MIGRATIONS.map((_, index) => index + 1),
    );
  });

  it("build the whole schema from an empty database", () => {
    const { db, path } = freshDatabase();
    expect(migrate(db, path)).toEqual({ from: 0, to: MIGRATIONS.length });
    expect(tables(db)).toEqual([
      "events",
      "images",
      "jobs",
      "networks",
      "nics",
      "port_forwards",
      "snapshots",
      "templates",
      "vm_labels",
      "vms",
    ]);
    expect(db.prepare("PRAGMA application_id").get()).toEqual({ application_id: APPLICATION_ID });
    expect(migrate(db, path)).toEqual({ from: MIGRATIONS.length, to: MIGRATIONS.length });
  });

  it("apply only the new ones to a database that has the earlier ones, keeping its rows", () => {
    const { db, path } = freshDatabase();
    migrate(db, path, notes);
    db.prepare("INSERT INTO notes (text) VALUES (?)").run("kept");
    const later: Migration[] = [
      ...notes,
      {
        version: 2,
        name: "note times",
        sql: "ALTER TABLE notes ADD COLUMN time TEXT NOT NULL DEFAULT 'never'",
      },
    ];
    expect(migrate(db, path, later)).toEqual({ from: 1, to: 2 });
    expect(db.prepare("SELECT text, time FROM notes").all()).toEqual([
      { text: "kept", time: "never" },
    ]);
  });

  it("keep the port forwards of version 2 when the NIC becomes optional (3)", () => {
    const { db, path } = freshDatabase();
    migrate(db, path, MIGRATIONS.slice(0, 2));
    db.exec(`
      INSERT INTO vms (id, name, os, spec, state, state_changed_at, state_dir, created_at,
        updated_at) VALUES ('v1', 'web', 'linux', '{}', 'created', 'then', '/v1', 'then', 'then');
      INSERT INTO networks (id, name, subnet, gateway, dhcp_start, dhcp_end, nat, isolated, bridge,
        bridge_mac, created_at) VALUES ('w1', 'lab', '10.9.0.0/24', '10.9.0.1', '10.9.0.2',
        '10.9.0.254', 1, 0, 'crl-br-lab', '52:54:00:00:00:01', 'then');
      INSERT INTO nics (id, vm_id, idx, network_id, mac, address, tap, created_at)
        VALUES ('n1', 'v1', 0, 'w1', '52:54:00:00:00:02', '10.9.0.2', 'crl-tap', 'then');
    `);
    db.prepare(
      `INSERT INTO port_forwards (id, vm_id, nic_id, host_address, host_port, protocol, guest_port,
         created_at) VALUES ('f1', 'v1', 'n1', '0.0.0.0', 8080, 'tcp', 80, 'then')`,
    ).run();
    expect(migrate(db, path).to).toBe(MIGRATIONS.length);
    expect(db.prepare("SELECT id, nic_id, host_port FROM port_forwards").all()).toEqual([
      { id: "f1", nic_id: "n1", host_port: 8080 },
    ]);
    db.prepare(
      `INSERT INTO port_forwards (id, vm_id, nic_id, host_address, host_port, protocol, guest_port,
         created_at) VALUES ('f2', 'v1', NULL, '127.0.0.1', 8081, 'tcp', 80, 'now')`,
    ).run();
    expect(
      db
        .prepare(
          "SELECT name FROM sqlite_schema WHERE tbl_name = 'port_forwards' AND type = 'index' AND name LIKE 'port_forwards_by_%' ORDER BY name",
        )
        .all(),
    ).toEqual([
      { name: "port_forwards_by_nic" },
      { name: "port_forwards_by_port" },
      { name: "port_forwards_by_vm" },
    ]);
  });

  it("roll a failing migration back whole and say which one failed", () => {
    const { db, path } = freshDatabase();
    migrate(db, path, notes);
    const broken: Migration[] = [
      ...notes,
      {
        version: 2,
        name: "half done",
        sql: "CREATE TABLE tags (name TEXT); INSERT INTO nowhere VALUES (1);",
      },
    ];
    expect(() => migrate(db, path, broken)).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: `${path}: migration 2 (half done) failed and was rolled back: no such table: nowhere`,
      }),
    );
    expect(userVersion(db)).toBe(1);
    expect(tables(db)).toEqual(["notes"]);
    expect(db.isTransaction).toBe(false);
  });

  it("refuse a migration that leaves a dangling foreign key", () => {
    const { db, path } = freshDatabase();
    const dangling: Migration[] = [
      {
        version: 1,
        name: "orphans",
        sql: `CREATE TABLE parents (id TEXT PRIMARY KEY);
              CREATE TABLE children (parent TEXT REFERENCES parents (id));
              INSERT INTO children VALUES ('nobody');`,
      },
    ];
    expect(() => migrate(db, path, dangling)).toThrow(
      "it leaves 1 rows of children with a dangling foreign key",
    );
    expect(userVersion(db)).toBe(0);
    expect(db.prepare("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
  });

  it("can rebuild a table that others refer to without cascading into their rows", () => {
    const { db, path } = freshDatabase();
    const family: Migration[] = [
      {
        version: 1,
        name: "parents and children",
        sql: `CREATE TABLE parents (id TEXT PRIMARY KEY, age INTEGER);
              CREATE TABLE children (parent TEXT REFERENCES parents (id) ON DELETE CASCADE);`,
      },
    ];
    migrate(db, path, family);
    db.exec("INSERT INTO parents VALUES ('p', 40); INSERT INTO children VALUES ('p')");
    const rebuilt: Migration[] = [
      ...family,
      {
        version: 2,
        name: "ages must be positive",
        sql: `CREATE TABLE parents_new (id TEXT PRIMARY KEY, age INTEGER CHECK (age > 0));
              INSERT INTO parents_new SELECT * FROM parents;
              DROP TABLE parents;
              ALTER TABLE parents_new RENAME TO parents;`,
      },
    ];
    migrate(db, path, rebuilt);
    expect(db.prepare("SELECT parent FROM children").all()).toEqual([{ parent: "p" }]);
    expect(() => db.exec("INSERT INTO parents VALUES ('q', 0)")).toThrow(/CHECK constraint/);
    expect(() => db.exec("INSERT INTO children VALUES ('nobody')")).toThrow(/FOREIGN KEY/);
  });

  it("never downgrade: a database newer than the list is refused untouched", () => {
    const { db, path } = freshDatabase();
    db.exec("PRAGMA user_version = 2");
    expect(() => migrate(db, path, notes)).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: expect.stringContaining("corral never downgrades its database"),
      }),
    );
    expect(userVersion(db)).toBe(2);
    expect(tables(db)).toEqual([]);
  });
});
