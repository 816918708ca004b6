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
export const BUILDER_VERSION = 3;

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
  const { raw, dir, hash } = readRecipe(name, []);
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
    hash,
  };
}

/**
 * A recipe's fields and the folder its files come from. A recipe with `"extends": "<parent>"`
 * is a recipe.json alone: its fields replace the parent's, and the files are the parent's.
 */
function readRecipe(
  name: string,
  seen: readonly string[],
): { raw: Record<string, unknown>; dir: string; hash: string } {
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
  const own = JSON.parse(text) as Record<string, unknown>;
  if (typeof own.extends !== "string") return { raw: own, dir, hash: hashRecipeDir(dir) };
  const parent = readRecipe(own.extends, [...seen, name]);
  const hash = createHash("sha256").update(parent.hash).update(text).digest("hex");
  return { raw: { ...parent.raw, ...own }, dir: parent.dir, hash };
}

function hashRecipeDir(dir: string): string {
  const hash = createHash("sha256").update(`corral-builder-${BUILDER_VERSION}\n`);
  for (const file of listFiles(dir)) {
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
