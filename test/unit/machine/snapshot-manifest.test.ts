// The snapshot manifest's checks, on real files in a temporary folder.

import {
  closeSync,
  mkdtempSync,
  openSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { sparseDigest } from "../../../src/host/sparse-digest.ts";
import {
  describeFile,
  type MachineIdentity,
  readManifest,
  requireCompatible,
  SNAPSHOT_FORMAT,
  type SnapshotManifest,
  verifyFiles,
  writeManifest,
} from "../../../src/machine/snapshot-manifest.ts";

const identity: MachineIdentity = {
  source: { kind: "image", imageId: "debian-12-abc", recipeHash: "abc" },
  backend: "qemu",
  vmmVersion: "QEMU emulator version 7.2.22",
  config: { accelerator: "tcg", cpus: 2, memoryMiB: 512, vlans: [1], node: 1, allowReboot: false },
};

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function snapshotFolder(): Promise<{ dir: string; manifest: SnapshotManifest }> {
  const dir = mkdtempSync(join(tmpdir(), "corral-manifest-"));
  dirs.push(dir);
  writeFileSync(join(dir, "state"), "device and memory state");
  writeFileSync(join(dir, "disk.qcow2"), "frozen disk layer");
  const manifest: SnapshotManifest = {
    format: SNAPSHOT_FORMAT,
    createdAt: new Date().toISOString(),
    machine: "web",
    ...identity,
    state: "state",
    disk: "disk.qcow2",
    files: {
      state: await describeFile(join(dir, "state")),
      "disk.qcow2": await describeFile(join(dir, "disk.qcow2")),
    },
  };
  await writeManifest(dir, manifest);
  return { dir, manifest };
}

describe("snapshot manifest", () => {
  it("reads back what was written, and accepts the machine it was made from", async () => {
    const { dir, manifest } = await snapshotFolder();
    expect(await readManifest(dir)).toEqual(manifest);
    expect(() => requireCompatible(dir, manifest, identity)).not.toThrow();
    await expect(verifyFiles(dir, manifest)).resolves.toBeUndefined();
  });

  it("names every way a machine differs from the snapshot's", async () => {
    const { dir, manifest } = await snapshotFolder();
    const other: MachineIdentity = {
      ...identity,
      vmmVersion: "QEMU emulator version 9.0.0",
      config: { ...identity.config, memoryMiB: 768, vlans: [1, 2] },
    };
    expect(() => requireCompatible(dir, manifest, other)).toThrowError(
      expect.objectContaining({
        code: ErrorCodes.SNAPSHOT_INVALID,
        message: `snapshot ${dir} does not fit this machine: made with qemu (QEMU emulator version 7.2.22), not qemu (QEMU emulator version 9.0.0); machine config memoryMiB is 512, not 768; machine config vlans is [1], not [1,2]`,
      }),
    );
  });

  it("tells a machine with resize headroom from one without, either way round", async () => {
    const { dir, manifest } = await snapshotFolder();
    const roomy: MachineIdentity = { ...identity, config: { ...identity.config, maxCpus: 4 } };
    expect(() => requireCompatible(dir, manifest, roomy)).toThrowError(
      "machine config maxCpus is null, not 4",
    );
    expect(() => requireCompatible(dir, { ...manifest, ...roomy }, identity)).toThrowError(
      "machine config maxCpus is 4, not null",
    );
  });

  it("takes another file for a read-only drive (a clone's own seed), never for a writable one", async () => {
    const { dir, manifest } = await snapshotFolder();
    const drive = (path: string, readOnly: boolean) =>
      ({ path, format: "raw", media: "disk", readOnly }) as const;
    const withDrives = (seed: string, data: string): MachineIdentity => ({
      ...identity,
      config: { ...identity.config, drives: [drive(seed, true), drive(data, false)] },
    });
    const taken = { ...manifest, ...withDrives("/vms/A/seed.iso", "/srv/data.raw") };
    expect(() =>
      requireCompatible(dir, taken, withDrives("/vms/B/seed.iso", "/srv/data.raw")),
    ).not.toThrow();
    expect(() =>
      requireCompatible(dir, taken, withDrives("/vms/A/seed.iso", "/srv/other.raw")),
    ).toThrowError("machine config drives is");
    const cdrom = { ...drive("/srv/a.iso", true), media: "cdrom" } as const;
    const asDisk: MachineIdentity = {
      ...identity,
      config: { ...identity.config, drives: [drive("/srv/a.iso", true)] },
    };
    expect(() =>
      requireCompatible(
        dir,
        { ...manifest, config: { ...identity.config, drives: [cdrom] } },
        asDisk,
      ),
    ).toThrowError("machine config drives is");
  });

  it("names a file changed since, even with its size and time put back", async () => {
    const { dir, manifest } = await snapshotFolder();
    writeFileSync(join(dir, "state"), "device and memory STATE");
    const recorded = manifest.files.state?.mtimeMs ?? 0;
    utimesSync(join(dir, "state"), recorded / 1000, recorded / 1000 + 1);
    await expect(verifyFiles(dir, manifest)).rejects.toMatchObject({
      code: ErrorCodes.SNAPSHOT_INVALID,
      message: expect.stringContaining(`snapshot file ${join(dir, "state")} fails its checksum`),
    });
  });

  it("checks a memory file by its sparse digest: equal content passes, a changed byte does not", async () => {
    const { dir, manifest } = await snapshotFolder();
    const memory = join(dir, "memory");
    writeFileSync(memory, Buffer.concat([Buffer.alloc(3 * 2 ** 20), Buffer.from("guest pages")]));
    const withMemory: SnapshotManifest = {
      ...manifest,
      memory: "memory",
      files: { ...manifest.files, memory: await describeFile(memory, await sparseDigest(memory)) },
    };
    expect(withMemory.files.memory?.digest).toBe("sha256-nonzero-mib");
    // Touched but the same: hashed again, and it passes.
    utimesSync(memory, 1, 1);
    await expect(verifyFiles(dir, withMemory)).resolves.toBeUndefined();
    const file = openSync(memory, "r+");
    writeSync(file, Buffer.from([1]), 0, 1, 2 ** 20);
    closeSync(file);
    await expect(verifyFiles(dir, withMemory)).rejects.toMatchObject({
      code: ErrorCodes.SNAPSHOT_INVALID,
      message: expect.stringContaining(`snapshot file ${memory} fails its checksum`),
    });
  });

  it("refuses a folder that is not a snapshot, or one of another format", async () => {
    const empty = mkdtempSync(join(tmpdir(), "corral-manifest-"));
    dirs.push(empty);
    await expect(readManifest(empty)).rejects.toMatchObject({
      code: ErrorCodes.SNAPSHOT_INVALID,
      message: `${empty} is not a snapshot: it has no manifest.json`,
    });
    const { dir, manifest } = await snapshotFolder();
    await writeManifest(dir, { ...manifest, format: 1 as never });
    await expect(readManifest(dir)).rejects.toMatchObject({
      message: `snapshot ${dir} has format 1; this corral reads formats 2 and ${SNAPSHOT_FORMAT}`,
    });
  });
});
