// manifest.json of a built image: what is in the cache entry, with a sha256 and size per artifact.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const MANIFEST_FILE = "manifest.json";
export const MANIFEST_FORMAT = 1;

export interface ArtifactRecord {
  sha256: string;
  sizeBytes: number;
}

export interface ImageManifest {
  format: typeof MANIFEST_FORMAT;
  /** Cache entry id: `<recipe>-<first 12 hex digits of the recipe hash>`. */
  id: string;
  recipe: string;
  recipeHash: string;
  builtAt: string;
  buildSeconds: number;
  kernelRelease: string;
  /** Name of the start script in the entry, `run-<recipe>-vm`. */
  startScript: string;
  artifacts: Record<string, ArtifactRecord>;
  /** Debian package versions in the root filesystem, the kernel package included. */
  packages: Record<string, string>;
  /** Host tools whose output is part of the image (the initramfs busybox). */
  hostTools: Record<string, string>;
  /** The recipe's machine defaults, to boot it without its start script; absent in older images. */
  boot?: ImageBootDefaults;
}

export interface ImageBootDefaults {
  kernelParams: string;
  memoryMiB: number;
  cpus: number;
}

/** The names of the files every image has besides its manifest. */
export function artifactNames(manifest: Pick<ImageManifest, "startScript">): string[] {
  return ["vmlinuz", "initrd", "root.qcow2", manifest.startScript];
}

export async function hashFile(path: string): Promise<ArtifactRecord> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk);
  return { sha256: hash.digest("hex"), sizeBytes: (await stat(path)).size };
}

export async function writeManifest(dir: string, manifest: ImageManifest): Promise<void> {
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Reads the manifest of the entry in `dir`; undefined when it is missing or unreadable. */
export async function readManifest(dir: string): Promise<ImageManifest | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as ImageManifest;
    return manifest.format === MANIFEST_FORMAT && manifest.artifacts ? manifest : undefined;
  } catch {
    return undefined;
  }
}

export interface VerifyProblem {
  file: string;
  problem: string;
}

/** Checks each artifact's size and sha256 against the manifest; returns what is wrong. */
export async function verifyArtifacts(
  dir: string,
  manifest: ImageManifest,
): Promise<VerifyProblem[]> {
  const checks = Object.entries(manifest.artifacts).map(async ([file, expected]) => {
    try {
      const actual = await hashFile(join(dir, file));
      if (actual.sizeBytes !== expected.sizeBytes) {
        return {
          file,
          problem: `size ${actual.sizeBytes} B, manifest says ${expected.sizeBytes} B`,
        };
      }
      if (actual.sha256 !== expected.sha256) {
        return { file, problem: `sha256 ${actual.sha256}, manifest says ${expected.sha256}` };
      }
      return undefined;
    } catch (error) {
      return {
        file,
        problem: (error as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : String(error),
      };
    }
  });
  const missingFromManifest = artifactNames(manifest)
    .filter((file) => !(file in manifest.artifacts))
    .map((file) => ({ file, problem: "not listed in the manifest" }));
  const results = await Promise.all(checks);
  return [...results.filter((result) => result !== undefined), ...missingFromManifest];
}
