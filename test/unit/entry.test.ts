// The package's entry re-exports index.ts name by name (after its Node.js version check): the
// same names, the same objects, so that the types of index.d.ts tell the truth.

import { expect, it } from "vitest";
import * as entry from "../../src/entry.ts";
import * as index from "../../src/index.ts";

it("exports exactly what index.ts exports", () => {
  expect(Object.keys(entry).sort()).toEqual(Object.keys(index).sort());
  const reexported = new Map<string, unknown>(Object.entries(entry));
  for (const [name, value] of Object.entries(index)) expect(reexported.get(name), name).toBe(value);
});
