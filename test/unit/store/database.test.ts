import { spawnSync } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { DATABASE_FILE, Database } from "../../../src/store/database.ts";
import { MIGRATIONS } from "../../../src/store/migrations.ts";
import { Store } from "../../../src/store/store.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { newVm, temporaryStore } from "../../helpers/store.ts";

/** A raw second connection to the database file at `path`, closed when the test ends. */
function rawConnection(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  onTestFinished(() => {
    if (db.isOpen) db.close();
  });
  return db;
}

describe("the state database", () => {
  it("is $XDG_STATE_HOME/corral/corral.db by default, in a folder only its owner can enter", async () => {
    const home = temporaryDir("corral-xdg-");
    const saved = process.env.XDG_STATE_HOME;
    process.env.XDG_STATE_HOME = join(home, "state");
    onTestFinished(() => {
      if (saved === undefined) delete process.env.XDG_STATE_HOME;
      else process.env.XDG_STATE_HOME = saved;
    });
    using store = await Store.open();
    expect(store.database.path).toBe(join(home, "state", "corral", DATABASE_FILE));
    expect(statSync(join(home, "state", "corral")).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, "state")).mode & 0o777).toBe(0o700);
  });

  it("runs in WAL mode with foreign keys on and a busy timeout", async () => {
    const store = await temporaryStore({ busyTimeoutMs: 1234 });
    expect(store.database.pragma("journal_mode")).toBe("wal");
    expect(store.database.pragma("foreign_keys")).toBe(1);
    expect(store.database.pragma("busy_timeout")).toBe(1234);
    expect(store.database.pragma("user_version")).toBe(MIGRATIONS.length);
    // WAL is a property of the file: a plain connection sees it too.
    const raw = rawConnection(store.database.path);
    expect(raw.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
  });

  it("keeps its rows when closed and opened again", async () => {
    const dir = temporaryDir("corral-store-");
    const first = await Store.open({ dir });
    const vm = first.vms.create(newVm("kept", { labels: { team: "a" } }));
    first.close();
    using second = await Store.open({ dir });
    expect(second.vms.get("kept")).toEqual(vm);
    expect(second.database.pragma("user_version")).toBe(MIGRATIONS.length);
  });

  it("refuses a database that a newer corral migrated, and leaves it as it is", async () => {
    const dir = temporaryDir("corral-store-");
    (await Store.open({ dir })).close();
    const path = join(dir, DATABASE_FILE);
    const raw = rawConnection(path);
    const newer = MIGRATIONS.length + 1;
    raw.exec(`PRAGMA user_version = ${newer}`);
    await expect(Store.open({ dir })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining(
        `${path} has schema version ${newer}, newer than this corral knows (${MIGRATIONS.length})`,
      ),
    });
    expect(raw.prepare("PRAGMA user_version").get()).toEqual({ user_version: newer });
  });

  it("refuses another program's SQLite file and a file that is not SQLite", async () => {
    const dir = temporaryDir("corral-store-");
    const other = join(dir, "other.db");
    rawConnection(other).exec("CREATE TABLE notes (text TEXT)");
    expect(() => Database.open(other)).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `${other} is not corral's state database but another program's SQLite file; move it away or pick another state folder`,
      }),
    );
    const text = join(dir, "text.db");
    writeFileSync(
      text,
      "not a database, but long enough to have a header of a hundred bytes. ".repeat(3),
    );
    expect(() => Database.open(text)).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining(`the state database ${text} cannot be read`),
      }),
    );
  });

  it("names the state folder when it cannot be created", async () => {
    const file = join(temporaryDir("corral-store-"), "file");
    writeFileSync(file, "");
    await expect(Store.open({ dir: join(file, "corral") })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining(`state folder ${join(file, "corral")} cannot be created`),
    });
  });

  it("opens without a word on stderr (no ExperimentalWarning in corral's output)", () => {
    const dir = temporaryDir("corral-store-");
    const store = new URL("../../../src/store/store.ts", import.meta.url).href;
    const script = `import { Store } from ${JSON.stringify(store)};
      (await Store.open({ dir: ${JSON.stringify(dir)} })).close();`;
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
    });
    expect(result).toMatchObject({ status: 0, stdout: "", stderr: "" });
  });

  it("closes once, however often it is closed or disposed", async () => {
    const store = await temporaryStore();
    store.close();
    store.close();
    store[Symbol.dispose]();
    expect(store.database.isOpen).toBe(false);
    expect(() => store.vms.list()).toThrow(/not open/);
  });

  it("commits a transaction whole or not at all, nested ones as savepoints", async () => {
    const store = await temporaryStore();
    expect(() =>
      store.transaction(() => {
        store.vms.create(newVm("one"));
        store.vms.create(newVm("two"));
        throw new Error("changed my mind");
      }),
    ).toThrow("changed my mind");
    expect(store.vms.list()).toEqual([]);

    store.transaction(() => {
      store.vms.create(newVm("outer"));
      expect(() =>
        store.transaction(() => {
          store.vms.create(newVm("inner"));
          throw new Error("inner only");
        }),
      ).toThrow("inner only");
      // A failed create inside is its own savepoint: the outer transaction goes on.
      expect(() => store.vms.create(newVm("outer", { stateDir: "/elsewhere" }))).toThrow(
        /already exists/,
      );
    });
    expect(store.vms.list().map((vm) => vm.name)).toEqual(["outer"]);
  });

  it("refuses asynchronous work in a transaction, and rolls it back", async () => {
    const store = await temporaryStore();
    expect(() =>
      store.transaction(() => {
        store.vms.create(newVm("early"));
        return Promise.resolve();
      }),
    ).toThrow("the work must be synchronous");
    expect(store.vms.list()).toEqual([]);
  });

  it("fails with CORRAL_CONFLICT when another process holds the write lock too long", async () => {
    const store = await temporaryStore({ busyTimeoutMs: 50 });
    const raw = rawConnection(store.database.path);
    raw.exec("BEGIN IMMEDIATE");
    expect(() => store.vms.create(newVm("blocked"))).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: `the state database ${store.database.path} is locked by another process: it stayed busy for 50 ms`,
      }),
    );
    raw.exec("ROLLBACK");
    expect(store.vms.create(newVm("blocked")).name).toBe("blocked");
    // Readers are not blocked by a writer in WAL mode.
    raw.exec("BEGIN IMMEDIATE");
    expect(store.vms.list().map((vm) => vm.name)).toEqual(["blocked"]);
    raw.exec("ROLLBACK");
  });
});
