// Image recipes: the folders under recipes/ (a recipe.json plus the files it uses), and their hash.

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { CorralError, ErrorCodes } from "../errors.ts";

/**
 * Bumped whenever the builder's own steps change what an image contains, so that old cache
 * entries stop matching.
 */
export const BUILDER_VERSION = 4;

export const DEFAULT_RECIPE = "debian-12";

/** The same folder from src/images/ (sources) and dist/images/ (built package). */
export const RECIPES_DIR = fileURLToPath(new URL("../../recipes/", import.meta.url));

export interface Recipe {
  name: string;
  dir: string;
  description: string;
  suite: string;
  /** APT source lines; `{mirror}` and `{security}` are filled in at build time. */
  sources: string[];
  packages: string[];
  pathExcludes: string[];
  kernelPackage: string;
  initramfsModules: string[];
  diskSizeMiB: number;
  memoryMiB: number;
  /** Virtual CPUs. Under TCG each runs on its own host thread, so 2 boots faster than 1. */
  cpus: number;
  kernelParams: string;
  /**
   * Folders of the recipes that extend the base with files of their own, base-most first: each
   * has a `customize.sh`, run after the base's with the root filesystem as its argument.
   */
  layers: string[];
  /** sha256 over the builder version and every file of the recipe folder. */
  hash: string;
}

/** Names of the recipes corral ships. */
export function knownRecipes(): string[] {
  return readdirSync(RECIPES_DIR, { withFileTypes: true })
    .filter(
      (entry) => entry.isDirectory() && existsSync(join(RECIPES_DIR, entry.name, "recipe.json")),
    )
    .map((entry) => entry.name)
    .sort();
}

/** Loads and checks recipe `name`; throws CORRAL_IMAGE_UNKNOWN listing the known ones. */
export function loadRecipe(name: string): Recipe {
  const { raw, dir, layers, hash } = readRecipe(name, []);
  const field = <T>(key: string, check: (value: unknown) => boolean): T => {
    if (!check(raw[key])) {
      throw new CorralError(
        ErrorCodes.IMAGE_UNKNOWN,
        `recipe ${name}: field "${key}" is missing or invalid`,
      );
    }
    return raw[key] as T;
  };
  const isString = (value: unknown) => typeof value === "string" && value.length > 0;
  const isStrings = (value: unknown) => Array.isArray(value) && value.every(isString);
  const isPositive = (value: unknown) => Number.isInteger(value) && (value as number) > 0;
  return {
    name,
    dir,
    description: field("description", isString),
    suite: field("suite", isString),
    sources: field("sources", isStrings),
    packages: field("packages", isStrings),
    pathExcludes: field("pathExcludes", isStrings),
    kernelPackage: field("kernelPackage", isString),
    initramfsModules: field("initramfsModules", isStrings),
    diskSizeMiB: field("diskSizeMiB", isPositive),
    memoryMiB: field("memoryMiB", isPositive),
    cpus: field("cpus", isPositive),
    kernelParams: field("kernelParams", isString),
    layers,
    hash,
  };
}

/**
 * A recipe's fields and the folder its files come from. A recipe with `"extends": "<parent>"`
 * takes the parent's fields and files: its own fields replace the parent's, `addPackages` is
 * appended to the parent's packages, and files beside its recipe.json (a `customize.sh` and what
 * it uses) make it a layer, customised after the parent.
 */
function readRecipe(
  name: string,
  seen: readonly string[],
): { raw: Record<string, unknown>; dir: string; layers: string[]; hash: string } {
  const known = knownRecipes();
  if (!known.includes(name)) {
    throw new CorralError(
      ErrorCodes.IMAGE_UNKNOWN,
      `unknown image recipe "${name}"${seen.length ? ` (extended by ${seen.at(-1)})` : ""}; known recipes: ${known.join(", ")}`,
    );
  }
  if (seen.includes(name)) {
    throw new CorralError(
      ErrorCodes.IMAGE_UNKNOWN,
      `recipes extend each other in a loop: ${[...seen, name].join(" -> ")}`,
    );
  }
  const dir = join(RECIPES_DIR, name);
  const text = readFileSync(join(dir, "recipe.json"), "utf8");
  const { addPackages, ...own } = JSON.parse(text) as Record<string, unknown>;
  if (typeof own.extends !== "string") {
    return { raw: own, dir, layers: [], hash: hashFiles(dir, listFiles(dir)) };
  }
  const parent = readRecipe(own.extends, [...seen, name]);
  const hash = createHash("sha256").update(parent.hash).update(text);
  const files = listFiles(dir).filter((file) => relative(dir, file) !== "recipe.json");
  if (files.length > 0 && !existsSync(join(dir, "customize.sh"))) {
    throw new CorralError(
      ErrorCodes.IMAGE_UNKNOWN,
      `recipe ${name}: files beside recipe.json need a customize.sh that uses them`,
    );
  }
  // A recipe.json alone hashes as it always has, so that its cached builds stay current.
  if (files.length > 0) hash.update(hashFiles(dir, files));
  if (addPackages !== undefined && !Array.isArray(addPackages)) {
    throw new CorralError(
      ErrorCodes.IMAGE_UNKNOWN,
      `recipe ${name}: field "addPackages" must be a list of package names`,
    );
  }
  const raw = { ...parent.raw, ...own };
  if (addPackages !== undefined && Array.isArray(raw.packages)) {
    raw.packages = [...raw.packages, ...addPackages];
  }
  return {
    raw,
    dir: parent.dir,
    layers: files.length > 0 ? [...parent.layers, dir] : parent.layers,
    hash: hash.digest("hex"),
  };
}

function hashFiles(dir: string, files: readonly string[]): string {
  const hash = createHash("sha256").update(`corral-builder-${BUILDER_VERSION}\n`);
  for (const file of files) {
    const stat = statSync(file);
    hash.update(`${relative(dir, file)}\n${stat.mode & 0o111 ? "x" : "-"}\n`);
    hash.update(readFileSync(file));
  }
  return hash.digest("hex");
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}
