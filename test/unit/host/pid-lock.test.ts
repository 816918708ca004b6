import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { PidLock } from "../../../src/host/pid-lock.ts";
import { temporaryDir } from "../../helpers/cli.ts";

describe("PidLock", () => {
  it("is held by one taker at a time and free again once released", async () => {
    const lockFile = join(temporaryDir("corral-lock-"), "lock");
    const lock = await PidLock.acquire(lockFile, "folder x");
    expect(readFileSync(lockFile, "utf8")).toMatch(new RegExp(`^${process.pid} `));
    await expect(PidLock.acquire(lockFile, "folder x")).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining(
        `folder x is in use by another corral run (pid ${process.pid})`,
      ),
    });
    await lock.release();
    expect(existsSync(lockFile)).toBe(false);
    await (await PidLock.acquire(lockFile, "folder x")).release();
  });

  it("refuses a lock that another live process holds", async () => {
    const lockFile = join(temporaryDir("corral-lock-"), "lock");
    const holder = spawn("sleep", ["30"]);
    onTestFinished(() => {
      holder.kill("SIGKILL");
    });
    writeFileSync(lockFile, `${holder.pid} from-elsewhere\n`);
    await expect(PidLock.acquire(lockFile, "folder x")).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining(`(pid ${holder.pid})`),
    });
    expect(readFileSync(lockFile, "utf8")).toBe(`${holder.pid} from-elsewhere\n`);
  });

  it("takes over a lock whose process is dead", async () => {
    const dir = temporaryDir("corral-lock-");
    const lockFile = join(dir, "lock");
    const dead = spawnSync("true").pid;
    writeFileSync(lockFile, `${dead} killed-run\n`);
    const lock = await PidLock.acquire(lockFile, "folder x");
    expect(readFileSync(lockFile, "utf8")).toMatch(new RegExp(`^${process.pid} `));
    await lock.release();
  });

  it("does not remove a lock taken over by another process after it was acquired", async () => {
    const lockFile = join(temporaryDir("corral-lock-"), "lock");
    const lock = await PidLock.acquire(lockFile, "folder x");
    writeFileSync(lockFile, "1 someone-else\n");
    await lock.release();
    expect(readFileSync(lockFile, "utf8")).toBe("1 someone-else\n");
  });
});
