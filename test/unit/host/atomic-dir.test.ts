import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { removeStalePartials, writeDirAtomically } from "../../../src/host/atomic-dir.ts";
import { temporaryDir } from "../../helpers/cli.ts";

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  return spawnSync("true").pid ?? 0;
}

describe("writeDirAtomically", () => {
  it("creates the folder with what fill wrote, leaving no partial folder", async () => {
    const parent = temporaryDir("corral-atomic-");
    const target = join(parent, "snap");
    const result = await writeDirAtomically(target, async (partial) => {
      expect(readdirSync(parent)).toEqual([
        expect.stringMatching(/^\.snap\.partial-[0-9a-f]+-\d+$/),
      ]);
      await writeFile(join(partial, "state"), "saved");
      return 42;
    });
    expect(result).toBe(42);
    expect(readdirSync(parent)).toEqual(["snap"]);
    expect(readFileSync(join(target, "state"), "utf8")).toBe("saved");
  });

  it("refuses a folder that exists and leaves it as it was", async () => {
    const parent = temporaryDir("corral-atomic-");
    mkdirSync(join(parent, "snap"));
    writeFileSync(join(parent, "snap", "mine"), "keep");
    await expect(writeDirAtomically(join(parent, "snap"), async () => {})).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("already exists"),
    });
    expect(readdirSync(parent)).toEqual(["snap"]);
    expect(readFileSync(join(parent, "snap", "mine"), "utf8")).toBe("keep");
  });

  it("removes the partial folder when fill fails", async () => {
    const parent = temporaryDir("corral-atomic-");
    await expect(
      writeDirAtomically(join(parent, "snap"), async (partial) => {
        await writeFile(join(partial, "half"), "x");
        throw new Error("disk full");
      }),
    ).rejects.toThrow("disk full");
    expect(readdirSync(parent)).toEqual([]);
  });

  it("two writers of one folder at once: one wins, the other gets CONFLICT and leaves nothing", async () => {
    const parent = temporaryDir("corral-atomic-");
    const target = join(parent, "snap");
    // Both writers are past the existence check, with their partial folders written, before
    // either renames: the race of two first `--reuse-boot` runs.
    const bothFilled = Promise.withResolvers<void>();
    let filled = 0;
    const write = (content: string) =>
      writeDirAtomically(target, async (partial) => {
        await writeFile(join(partial, "state"), content);
        filled += 1;
        if (filled === 2) bothFilled.resolve();
        await bothFilled.promise;
        return content;
      });
    const results = await Promise.allSettled([write("first"), write("second")]);
    const won = results.filter((result) => result.status === "fulfilled");
    const lost = results.filter((result) => result.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("was created by another process"),
    });
    expect(readdirSync(parent)).toEqual(["snap"]);
    expect(readFileSync(join(target, "state"), "utf8")).toBe(won[0]?.value);
  });

  it("removes stale partial folders of the same folder before writing", async () => {
    const parent = temporaryDir("corral-atomic-");
    const other = `.other.partial-0a1b-${deadPid()}`;
    mkdirSync(join(parent, `.snap.partial-0a1b-${deadPid()}`));
    mkdirSync(join(parent, other));
    await writeDirAtomically(join(parent, "snap"), async () => {});
    expect(readdirSync(parent).sort()).toEqual([other, "snap"]);
  });
});

describe("removeStalePartials", () => {
  it("removes the partial folders of dead writers and keeps those of live ones", async () => {
    const parent = temporaryDir("corral-atomic-");
    const dead = `.a-0123456789abcdef.partial-c0ffee-${deadPid()}`;
    const live = `.b-0123456789abcdef.partial-c0ffee-${process.pid}`;
    for (const name of [dead, live, "c-0123456789abcdef", ".unrelated"]) {
      mkdirSync(join(parent, name));
    }
    writeFileSync(join(parent, dead, "state"), "70 MB of memory");
    expect(await removeStalePartials(parent)).toEqual([dead]);
    expect(readdirSync(parent).sort()).toEqual([live, ".unrelated", "c-0123456789abcdef"].sort());
  });
});
