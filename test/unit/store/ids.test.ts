import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { idFor, newId } from "../../../src/store/ids.ts";

describe("row ids", () => {
  it("are 26 upper-case Crockford base32 characters, unique", () => {
    const ids = Array.from({ length: 1000 }, () => newId());
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("sort by the time they were made", () => {
    const times = [0, 1, 31, 32, 1_700_000_000_000, 1_700_000_000_001, 2 ** 48 - 1];
    const ids = times.map((time) => newId(time));
    expect([...ids].sort()).toEqual(ids);
    expect(newId(0).slice(0, 10)).toBe("0000000000");
    expect(newId(2 ** 48 - 1).slice(0, 10)).toBe("7ZZZZZZZZZ");
  });

  it("can be chosen by the caller, if they are ids", () => {
    const id = newId();
    expect(idFor("VM", id)).toBe(id);
    expect(idFor("VM", undefined)).toMatch(/^[0-9A-Z]{26}$/);
    expect(() => idFor("VM", "web")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: 'VM id "web" must be a ULID made by newId()',
      }),
    );
  });
});
