// The image cache: one folder per built recipe under $XDG_CACHE_HOME/corral/images, named by id.
// Builds happen in `.partial-*` folders that are renamed into place only when complete.

import { existsSync, readFileSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { imagesDir } from "../host/paths.ts";
import { isAlive } from "../host/pid-lock.ts";
import { runProgram } from "../host/run-program.ts";
import { type ImageManifest, readManifest } from "./manifest.ts";
import { DEFAULT_RECIPE, knownRecipes, loadRecipe, type Recipe } from "./recipe.ts";

export const PARTIAL_PREFIX = ".partial-";

export interface CachedImage {
  dir: string;
  manifest: ImageManifest;
  /** Built from the recipe as it is now (false: an older version of the recipe). */
  isCurrent: boolean;
}

export function imageId(recipe: Pick<Recipe, "name" | "hash">): string {
  return `${recipe.name}-${recipe.hash.slice(0, 12)}`;
}

export function entryDir(recipe: Pick<Recipe, "name" | "hash">): string {
  return join(imagesDir(), imageId(recipe));
}

/** Every complete entry in the cache, newest first. */
export async function listImages(): Promise<CachedImage[]> {
  let names: string[];
  try {
    names = await readdir(imagesDir());
  } catch {
    return [];
  }
  const currentHashes = new Map(knownRecipes().map((name) => [name, loadRecipe(name).hash]));
  const entries: CachedImage[] = [];
  for (const name of names.filter((entry) => !entry.startsWith("."))) {
    const dir = join(imagesDir(), name);
    const manifest = await readManifest(dir);
    if (!manifest) continue;
    entries.push({
      dir,
      manifest,
      isCurrent: currentHashes.get(manifest.recipe) === manifest.recipeHash,
    });
  }
  return entries.sort((a, b) => b.manifest.builtAt.localeCompare(a.manifest.builtAt));
}

/**
 * The cache entry for `nameOrId`: a recipe name (its current build) or an entry id.
 * Throws CORRAL_IMAGE_UNKNOWN (listing what exists) or CORRAL_IMAGE_NOT_BUILT.
 */
export async function findImage(nameOrId: string = DEFAULT_RECIPE): Promise<CachedImage> {
  const entry = await entryNamed(nameOrId);
  if (entry) return entry;
  const images = await listImages();
  const byId = images.find((image) => image.manifest.id === nameOrId);
  if (byId) return byId;
  if (!knownRecipes().includes(nameOrId)) throw unknownImage(nameOrId, images);
  const current = images.find((image) => image.manifest.recipe === nameOrId && image.isCurrent);
  if (!current) {
    throw new CorralError(
      ErrorCodes.IMAGE_NOT_BUILT,
      `image ${nameOrId} is not built yet: run \`corral image build ${nameOrId}\``,
    );
  }
  return current;
}

/**
 * The entry a recipe's current build or an id names, read by itself (every start looks its image
 * up: reading the whole cache and hashing every recipe took a restore's first 10 ms).
 */
async function entryNamed(nameOrId: string): Promise<CachedImage | undefined> {
  const isRecipe = knownRecipes().includes(nameOrId);
  if (!isRecipe && !/^\w[\w.-]*$/.test(nameOrId)) return undefined;
  const dir = isRecipe ? entryDir(loadRecipe(nameOrId)) : join(imagesDir(), nameOrId);
  const manifest = await readManifest(dir);
  if (!manifest || (!isRecipe && manifest.id !== nameOrId)) return undefined;
  const isCurrent =
    isRecipe ||
    (knownRecipes().includes(manifest.recipe) &&
      loadRecipe(manifest.recipe).hash === manifest.recipeHash);
  return { dir, manifest, isCurrent };
}

/** Throws CORRAL_IMAGE_UNKNOWN unless `nameOrId` is a recipe or a built image's id. */
export async function checkImageName(nameOrId: string): Promise<void> {
  if (knownRecipes().includes(nameOrId)) return;
  const images = await listImages();
  if (!images.some((image) => image.manifest.id === nameOrId)) {
    throw unknownImage(nameOrId, images);
  }
}

function unknownImage(nameOrId: string, images: readonly CachedImage[]): CorralError {
  const ids = images.map((image) => image.manifest.id);
  return new CorralError(
    ErrorCodes.IMAGE_UNKNOWN,
    `unknown image "${nameOrId}"; known recipes: ${knownRecipes().join(", ")}` +
      (ids.length > 0 ? `; built images: ${ids.join(", ")}` : ""),
  );
}

/** The kernel of the default image, used to probe KVM; undefined until that image is built. */
export async function defaultProbeKernel(): Promise<string | undefined> {
  return findImage(DEFAULT_RECIPE).then(
    (image) => join(image.dir, "vmlinuz"),
    () => undefined,
  );
}

/** Removes the entries matching a recipe name or an entry id; returns the ids removed. */
export async function removeImages(nameOrId: string): Promise<string[]> {
  const images = await listImages();
  const doomed = images.filter(
    (image) => image.manifest.id === nameOrId || image.manifest.recipe === nameOrId,
  );
  if (doomed.length === 0) {
    const ids = images.map((image) => image.manifest.id);
    throw new CorralError(
      ErrorCodes.IMAGE_UNKNOWN,
      `no built image matches "${nameOrId}"; built images: ${ids.length > 0 ? ids.join(", ") : "(none)"}`,
    );
  }
  for (const image of doomed) await rm(image.dir, { recursive: true, force: true });
  return doomed.map((image) => image.manifest.id);
}

/** Deletes `.partial-*` build folders whose builder process is gone (a killed build). */
export async function removeAbandonedBuilds(): Promise<void> {
  let names: string[];
  try {
    names = await readdir(imagesDir());
  } catch {
    return;
  }
  for (const name of names.filter((entry) => entry.startsWith(PARTIAL_PREFIX))) {
    const pid = Number(name.split("-").at(-1));
    if (Number.isInteger(pid) && isAlive(pid)) continue;
    await removeBuildDir(join(imagesDir(), name));
  }
}

/**
 * Removes a build folder. mmdebstrap mounts /dev, /proc and /sys inside the root filesystem it
 * builds; a killed build may leave them mounted, and a recursive delete must never reach the
 * host's /dev through them. Unmount first, and refuse if anything stays mounted.
 */
export async function removeBuildDir(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const inside = mountsUnder(dir);
  for (const mount of inside) {
    await runProgram("umount", ["--lazy", "--recursive", mount]).catch(() => undefined);
  }
  const left = mountsUnder(dir);
  if (left.length > 0) {
    throw new CorralError(
      ErrorCodes.IMAGE_BUILD_FAILED,
      `cannot clean up ${dir}: still mounted: ${left.join(", ")}; unmount them and delete it by hand`,
    );
  }
  await rm(dir, { recursive: true, force: true });
}

function mountsUnder(dir: string): string[] {
  const prefix = `${resolve(dir)}/`;
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1]?.replace(/\\040/g, " ") ?? "")
    .filter((mountPoint) => mountPoint.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}
