import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { knownRecipes, loadRecipe, RECIPES_DIR } from "../../../src/images/recipe.ts";

describe("recipes", () => {
  it("ships debian-12 with a stable hash", () => {
    expect(knownRecipes()).toContain("debian-12");
    const recipe = loadRecipe("debian-12");
    expect(recipe.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(loadRecipe("debian-12").hash).toBe(recipe.hash);
    expect(recipe.packages).toEqual(
      expect.arrayContaining(["systemd", "qemu-guest-agent", "busybox"]),
    );
  });

  it("rejects an unknown recipe and lists the known ones", () => {
    expect(() => loadRecipe("windows-95")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.IMAGE_UNKNOWN,
        message: expect.stringContaining("debian-12"),
      }),
    );
  });
});

describe("a recipe that extends another", () => {
  it("takes the parent's fields and files, replaces what it sets, and hashes both", () => {
    const base = loadRecipe("debian-12");
    const full = loadRecipe("debian-12-full");
    expect(full.kernelPackage).toBe("linux-image-amd64");
    expect(full.initramfsModules).toContain("ext4");
    expect(full.packages).toEqual(base.packages);
    expect(full.kernelParams).toBe(base.kernelParams);
    expect(full.dir).toBe(base.dir);
    expect(full.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(full.hash).not.toBe(base.hash);
  });
});

describe("a recipe that extends another with files of its own", () => {
  it("is a layer: the parent's packages plus its own, its folder customised after the parent", () => {
    const base = loadRecipe("debian-12");
    const cloud = loadRecipe("debian-12-cloud");
    expect(cloud.packages).toEqual([...base.packages, "cloud-init", "sudo", "openssh-server"]);
    expect(cloud.dir).toBe(base.dir);
    expect(cloud.layers).toEqual([join(RECIPES_DIR, "debian-12-cloud")]);
    expect(cloud.initramfsModules).toEqual(expect.arrayContaining(["ata_piix", "sr_mod"]));
    expect(cloud.hash).not.toBe(base.hash);
  });

  it("leaves the hash of a recipe.json alone as it was, so its cached builds stay current", () => {
    const text = readFileSync(join(RECIPES_DIR, "debian-12-full", "recipe.json"), "utf8");
    const full = loadRecipe("debian-12-full");
    expect(full.layers).toEqual([]);
    expect(full.hash).toBe(
      createHash("sha256").update(loadRecipe("debian-12").hash).update(text).digest("hex"),
    );
  });
});
