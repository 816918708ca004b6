// A snapshot folder's manifest.json: what the snapshot was made from (image or start script,
// backend and its version, machine config) and each file's checksum, so that a snapshot is only restored
// where it fits and never from a damaged file.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { DiskImage, VmDrive, VmMachine } from "../backends/backend.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { SPARSE_DIGEST, sparseDigest } from "../host/sparse-digest.ts";

/** Format 3 may map its RAM from a memory file; format 2 (RAM in the state stream) still reads. */
export const SNAPSHOT_FORMAT = 3;
const READABLE_FORMATS: readonly number[] = [2, SNAPSHOT_FORMAT];
export const MANIFEST_FILE = "manifest.json";

/** What the VM was started from: a corral image, a start script (by its content), or a disk. */
export type SnapshotSource =
  | { kind: "image"; imageId: string; recipeHash: string }
  | { kind: "start-script"; path: string; sha256: string }
  | { kind: "disk" };

/** Everything about the VM that its devices depend on; a clone gets exactly this. */
export interface SnapshotConfig {
  accelerator: string;
  cpus: number | null;
  memoryMiB: number | null;
  /** Resize headroom; present only when the machine had it. */
  maxCpus?: number;
  maxMemoryMiB?: number;
  vlans: number[];
  /** How many TAP NICs it had; present only when it had some. */
  taps?: number;
  node: number;
  allowReboot: boolean;
  /** The guest agent's port; present only when the machine had it. */
  guestAgent?: true;
  /** The transfer disk for file copies; present only when the machine had it. */
  transferDisk?: true;
  // --- machine profile (absent from snapshots taken before profiles) ---
  /** The virtual hardware; null for a start script's own. */
  machine?: VmMachine | null;
  /** The disk the root disk was based on instead of the image's (it must stay unchanged). */
  bootDisk?: DiskImage | null;
  drives?: VmDrive[];
}

/** What a snapshot must match of the machine that restores it. */
export interface MachineIdentity {
  source: SnapshotSource;
  backend: string;
  vmmVersion: string;
  config: SnapshotConfig;
}

export interface SnapshotFile {
  /** sha256 of the whole file, or of its non-zero MiBs when `digest` says so. */
  sha256: string;
  digest?: typeof SPARSE_DIGEST;
  sizeBytes: number;
  /** When the file was last written, to skip re-hashing files nobody touched. */
  mtimeMs: number;
}

export interface SnapshotManifest {
  format: 2 | typeof SNAPSHOT_FORMAT;
  createdAt: string;
  machine: string;
  source: SnapshotSource;
  /** The backend that saved it, and its VMM's version: state restores only under the same. */
  backend: string;
  vmmVersion: string;
  config: SnapshotConfig;
  /** The migration stream and the frozen disk layer, by file name in the snapshot folder. */
  state: string;
  disk: string;
  /** The guest's RAM, mapped by a restore; absent when it is in the state stream. */
  memory?: string;
  /**
   * The session token of the backdoor shell the snapshot caught idle: a restore uses that shell
   * without sending it the prelude again. Absent when no shell was in use (or in older snapshots).
   */
  shellSession?: string;
  files: Record<string, SnapshotFile>;
}

/** The entry of the file at `path`: its sha256, or its sparse digest when given one. */
export async function describeFile(path: string, sparse?: string): Promise<SnapshotFile> {
  const info = await stat(path);
  const digest = sparse
    ? { sha256: sparse, digest: SPARSE_DIGEST }
    : { sha256: await sha256(path) };
  return { ...digest, sizeBytes: info.size, mtimeMs: info.mtimeMs };
}

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

export async function writeManifest(dir: string, manifest: SnapshotManifest): Promise<void> {
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}

export async function readManifest(dir: string): Promise<SnapshotManifest> {
  let manifest: SnapshotManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as SnapshotManifest;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new CorralError(
      ErrorCodes.SNAPSHOT_INVALID,
      missing
        ? `${dir} is not a snapshot: it has no ${MANIFEST_FILE}`
        : `the snapshot manifest ${join(dir, MANIFEST_FILE)} is not valid JSON`,
      { cause: error },
    );
  }
  if (!READABLE_FORMATS.includes(manifest.format)) {
    throw new CorralError(
      ErrorCodes.SNAPSHOT_INVALID,
      `snapshot ${dir} has format ${manifest.format}; this corral reads formats ${READABLE_FORMATS.join(" and ")}`,
    );
  }
  return manifest;
}

/**
 * Checks every file against its checksum. A file whose size and modification time are as
 * recorded is trusted without re-hashing (a restore must not read a whole memory file); any
 * other is hashed, and a mismatch names the file.
 */
export async function verifyFiles(dir: string, manifest: SnapshotManifest): Promise<void> {
  for (const [name, expected] of Object.entries(manifest.files)) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info) {
      throw new CorralError(ErrorCodes.SNAPSHOT_INVALID, `snapshot file ${path} is missing`);
    }
    if (info.size === expected.sizeBytes && info.mtimeMs === expected.mtimeMs) continue;
    const actual =
      expected.digest === SPARSE_DIGEST ? await sparseDigest(path) : await sha256(path);
    if (actual !== expected.sha256) {
      throw new CorralError(
        ErrorCodes.SNAPSHOT_INVALID,
        `snapshot file ${path} fails its checksum (sha256 ${actual.slice(0, 12)}…, expected ${expected.sha256.slice(0, 12)}…): it was changed or damaged; take the snapshot again`,
      );
    }
  }
}

/** Throws SNAPSHOT_INVALID naming each way in which `manifest` differs from what runs here. */
export function requireCompatible(
  dir: string,
  manifest: SnapshotManifest,
  current: MachineIdentity,
): void {
  const differences: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(manifest.source, current.source)) {
    differences.push(
      `made from ${describeSource(manifest.source)}, not ${describeSource(current.source)}`,
    );
  }
  if (manifest.backend !== current.backend || manifest.vmmVersion !== current.vmmVersion) {
    differences.push(
      `made with ${manifest.backend} (${manifest.vmmVersion}), not ${current.backend} (${current.vmmVersion})`,
    );
  }
  const keys = new Set([...Object.keys(manifest.config), ...Object.keys(current.config)]);
  for (const key of keys as Set<keyof SnapshotConfig>) {
    if (!same(comparable(key, manifest.config[key]), comparable(key, current.config[key]))) {
      differences.push(
        `machine config ${key} is ${JSON.stringify(manifest.config[key] ?? null)}, not ${JSON.stringify(current.config[key] ?? null)}`,
      );
    }
  }
  if (differences.length > 0) {
    throw new CorralError(
      ErrorCodes.SNAPSHOT_INVALID,
      `snapshot ${dir} does not fit this machine: ${differences.join("; ")}`,
    );
  }
}

/**
 * A config value as a restore must match it. A read-only drive may be another file of its kind
 * (a clone's own cloud-init seed beside the one its snapshot's VM had): the guest never wrote to
 * it, and the devices are the same.
 */
function comparable(key: keyof SnapshotConfig, value: unknown): unknown {
  if (key !== "drives" || !Array.isArray(value)) return value;
  return (value as VmDrive[]).map(({ path, ...drive }) =>
    drive.readOnly ? drive : { path, ...drive },
  );
}

function describeSource(source: SnapshotSource): string {
  if (source.kind === "image") return `image ${source.imageId}`;
  if (source.kind === "disk") return "a disk booted by its firmware";
  return `start script ${source.path} (sha256 ${source.sha256.slice(0, 12)}…)`;
}
