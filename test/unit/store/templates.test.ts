import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { temporaryStore } from "../../helpers/store.ts";

const body = { machine: "pc", cpus: 1, memoryMiB: 512, limits: { maxCpus: 4 } };

describe("TemplateRepository", () => {
  it("adds, lists, replaces and removes templates", async () => {
    const store = await temporaryStore();
    const builtin = store.templates.create({ name: "linux-default", source: "builtin", body });
    expect(builtin).toEqual({
      name: "linux-default",
      source: "builtin",
      body,
      createdAt: expect.any(String),
      updatedAt: builtin.createdAt,
    });
    const mine = store.templates.create({ name: "big", source: "user", body: { cpus: 8 } });
    expect(store.templates.list().map((t) => t.name)).toEqual(["big", "linux-default"]);
    expect(store.templates.list({ source: "user" })).toEqual([mine]);

    const replaced = store.templates.put({
      name: "linux-default",
      source: "builtin",
      body: { ...body, cpus: 2 },
    });
    expect(replaced).toMatchObject({ body: { cpus: 2 }, createdAt: builtin.createdAt });
    expect(store.templates.put({ name: "small", source: "user", body: {} }).name).toBe("small");

    expect(store.templates.remove("big")).toEqual(mine);
    expect(() => store.templates.get("big")).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND, message: 'no template named "big"' }),
    );
    expect(() => store.templates.remove("big")).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
  });

  it("takes a name once, saying whose it is", async () => {
    const store = await temporaryStore();
    store.templates.create({ name: "windows-default", source: "builtin", body });
    expect(() => store.templates.create({ name: "windows-default", source: "user", body })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'a built-in template named "windows-default" already exists',
      }),
    );
  });

  it("rejects bad names, sources and bodies", async () => {
    const store = await temporaryStore();
    const good = { name: "t", source: "user", body };
    for (const [fields, message] of [
      [{ name: "Big VM" }, 'template name "Big VM" must be a DNS label'],
      [{ source: "system" }, 'template source "system" must be one of builtin, user'],
      [{ body: "cpus: 2" }, 'template body "cpus: 2" must be a JSON object'],
    ] as const) {
      expect(() => store.templates.create({ ...good, ...fields } as never)).toThrow(
        expect.objectContaining({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: expect.stringContaining(message),
        }),
      );
    }
  });
});
