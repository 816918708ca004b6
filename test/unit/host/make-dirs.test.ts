import { chmodSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { makeDirs } from "../../../src/host/make-dirs.ts";
import { temporaryDir } from "../../helpers/cli.ts";

describe("makeDirs", () => {
  it("creates the missing folders, outermost first, and returns them", async () => {
    const base = temporaryDir("corral-dirs-");
    expect(await makeDirs(join(base, "a/b/c"), "output folder")).toEqual([
      join(base, "a"),
      join(base, "a/b"),
      join(base, "a/b/c"),
    ]);
    expect(await makeDirs(join(base, "a/b"), "output folder")).toEqual([]);
  });

  it("gives the folders it creates the mode asked for, and leaves the others as they are", async () => {
    const base = temporaryDir("corral-dirs-");
    mkdirSync(join(base, "open"));
    chmodSync(join(base, "open"), 0o755);
    await makeDirs(join(base, "open/private/inner"), "state folder", 0o700);
    const mode = (path: string) => statSync(join(base, path)).mode & 0o777;
    expect([mode("open"), mode("open/private"), mode("open/private/inner")]).toEqual([
      0o755, 0o700, 0o700,
    ]);
  });

  it("fails at once where the kernel refuses a folder that recursive mkdir spins on", async () => {
    await expect(makeDirs("/proc/nope/deeper", "output folder")).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringMatching(/^output folder \/proc\/nope\/deeper cannot be created: /),
    });
  });

  it("names the file that stands in the way", async () => {
    const base = temporaryDir("corral-dirs-");
    writeFileSync(join(base, "notes.txt"), "important");
    await expect(makeDirs(join(base, "notes.txt/x"), "output folder")).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining(`${join(base, "notes.txt")} is a file, not a folder`),
    });
  });
});
