// The template catalog over a real store and a real user folder: built-ins written at load, the
// user's files read (bad ones refused with file, line and field), and the store, the folder and
// the API's add/remove kept as one set.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { parseTemplate } from "../../../src/manager/template-file.ts";
import { BUILTIN_TEMPLATES_DIR, TemplateCatalog } from "../../../src/manager/templates.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { temporaryStore } from "../../helpers/store.ts";

const BUILTINS = ["linux-default", "linux-microvm", "windows-default"];
const small = { name: "small", os: "linux" as const, image: "debian-12", cpus: 1, memoryMiB: 128 };

async function catalog(files: Record<string, string> = {}) {
  const store = await temporaryStore();
  const dir = join(temporaryDir("corral-templates-"), "templates");
  if (Object.keys(files).length > 0) mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { store, dir, templates: new TemplateCatalog(store, dir) };
}

describe("TemplateCatalog", () => {
  it("loads the built-ins into the store, and a missing user folder is no user template", async () => {
    const { store, templates } = await catalog();
    expect(await templates.load()).toEqual({ builtin: BUILTINS, user: [], rejected: [] });
    expect(store.templates.list().map((t) => [t.name, t.source])).toEqual(
      BUILTINS.map((name) => [name, "builtin"]),
    );
    expect(templates.get("windows-default")).toEqual({
      name: "windows-default",
      source: "builtin",
      file: join(BUILTIN_TEMPLATES_DIR, "windows-default.yaml"),
      template: expect.objectContaining({
        os: "windows",
        min: { cpus: 2, memoryMiB: 1024, diskGiB: 32 },
      }),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
  });

  it("loads valid user files and refuses bad ones with file, line and field", async () => {
    const { dir, templates } = await catalog({
      "small.yaml": "name: small\nos: linux\nimage: debian-12\ncpus: 1\nmemoryMiB: 128\n",
      "bad.yaml": "name: bad\nos: linux\nimage: debian-12\ncpus: 1\nmemoryMiB: 12\n",
      "linux-default.yaml": "name: linux-default\nos: linux\ncpus: 1\nmemoryMiB: 128\n",
      "notes.txt": "not a template",
      ".small.abc123": "a half-written file of an earlier add",
    });
    const loaded = await templates.load();
    expect(loaded.builtin).toEqual(BUILTINS);
    expect(loaded.user).toEqual(["small"]);
    expect(loaded.rejected.map((error) => [error.code, error.message])).toEqual([
      [
        ErrorCodes.INVALID_ARGUMENT,
        `invalid template ${join(dir, "bad.yaml")}:5:1: memoryMiB: must be >= 64, got 12`,
      ],
      [
        ErrorCodes.CONFLICT,
        `template ${join(dir, "linux-default.yaml")}: a built-in template is named linux-default; rename the file and its name field`,
      ],
    ]);
    expect(templates.list().map((t) => `${t.name}:${t.source}`)).toEqual([
      "linux-default:builtin",
      "linux-microvm:builtin",
      "small:user",
      "windows-default:builtin",
    ]);
    expect(templates.get("small")).toMatchObject({
      file: join(dir, "small.yaml"),
      template: small,
    });
  });

  it("makes the store follow the folder: templates whose file went are dropped at load", async () => {
    const { store, dir, templates } = await catalog();
    await templates.load();
    await templates.add(small);
    store.templates.put({ name: "gone-builtin", source: "builtin", body: small });
    writeFileSync(
      join(dir, "small.yaml"),
      "name: small\nos: linux\nimage: x\ncpus: 2\nmemoryMiB: 256\n",
    );
    expect((await new TemplateCatalog(store, dir).load()).user).toEqual(["small"]);
    expect(templates.get("small").template).toMatchObject({ cpus: 2, image: "x" });
    expect(store.templates.find("gone-builtin")).toBeUndefined();

    writeFileSync(join(dir, "small.yaml"), "name: small\ncpus: lots\n");
    const reloaded = await new TemplateCatalog(store, dir).load();
    expect(reloaded.rejected).toHaveLength(1);
    expect(store.templates.find("small")).toBeUndefined();
  });

  it("adds a user template as a YAML file in the folder that loads back to the same template", async () => {
    const { store, dir, templates } = await catalog();
    await templates.load();
    const added = await templates.add({ ...small, max: { cpus: 4 } });
    expect(added).toMatchObject({ name: "small", source: "user", file: join(dir, "small.yaml") });
    expect(readdirSync(dir)).toEqual(["small.yaml"]);
    const text = readFileSync(join(dir, "small.yaml"), "utf8");
    expect(parseTemplate(text, "small.yaml")).toEqual({ ...small, max: { cpus: 4 } });
    expect(store.templates.get("small")).toMatchObject({ source: "user" });
    const again = new TemplateCatalog(store, dir);
    expect(await again.load()).toMatchObject({ user: ["small"], rejected: [] });
  });

  it("refuses to add over a taken name, a built-in, a stray file, or against the rules", async () => {
    const { dir, templates } = await catalog();
    await templates.load();
    await templates.add(small);
    await expect(templates.add(small)).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: 'a user template named "small" already exists: remove it first to replace it',
    });
    await expect(templates.add({ ...small, name: "linux-default" })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: 'a built-in template named "linux-default" already exists',
    });
    writeFileSync(join(dir, "stray.yaml"), "name: stray\n");
    await expect(templates.add({ ...small, name: "stray" })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: `${join(dir, "stray.yaml")} already exists (a template file that was refused when the daemon started?): fix or remove it first`,
    });
    expect(readFileSync(join(dir, "stray.yaml"), "utf8")).toBe("name: stray\n");
    await expect(
      templates.add({ ...small, name: "uefi", firmware: "uefi", min: { cpus: 2 } }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message:
        "invalid template: body/firmware: uefi needs machineType q35 (this template has pc)\nbody/cpus: 1 is below the template's minimum of 2",
    });
    expect(readdirSync(dir).sort()).toEqual(["small.yaml", "stray.yaml"]);
  });

  it("of two adds of one name at once, exactly one wins", async () => {
    const { dir, templates } = await catalog();
    await templates.load();
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => templates.add({ ...small, cpus: i + 1 })),
    );
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1);
    expect(readdirSync(dir)).toEqual(["small.yaml"]);
    const stored = templates.get("small").template;
    expect(parseTemplate(readFileSync(join(dir, "small.yaml"), "utf8"), "x")).toEqual(stored);
  });

  it("removes a user template with its file, never a built-in one", async () => {
    const { store, dir, templates } = await catalog();
    await templates.load();
    await templates.add(small);
    expect(await templates.remove("small")).toMatchObject({ name: "small", source: "user" });
    expect(existsSync(join(dir, "small.yaml"))).toBe(false);
    expect(store.templates.find("small")).toBeUndefined();
    await expect(templates.remove("small")).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
      message: 'no template named "small" (known: linux-default, linux-microvm, windows-default)',
    });
    await expect(templates.remove("linux-default")).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message:
        '"linux-default" is a built-in template and cannot be removed; a user template may be made from it under another name',
    });
    expect(store.templates.find("linux-default")).toBeDefined();
  });
});
