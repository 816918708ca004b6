// The VMM API specs in specs/ are verbatim upstream copies: their sha256 sums are the ones
// specs/README.md records, so a hand edit (which would make the contract tests lie) fails here.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { specFile } from "../../helpers/vmm-spec.ts";

const readme = readFileSync(new URL("../../../specs/README.md", import.meta.url), "utf8");

describe("specs/", () => {
  for (const name of ["firecracker", "cloud-hypervisor"] as const) {
    it(`${name}.yaml has the sha256 specs/README.md records`, () => {
      const sum = createHash("sha256")
        .update(readFileSync(specFile(name)))
        .digest("hex");
      const row = readme.split("\n").find((line) => line.startsWith(`| \`${name}.yaml\``));
      expect(row).toContain(sum);
    });
  }
});
