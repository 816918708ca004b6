import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  hashFile,
  type ImageManifest,
  MANIFEST_FORMAT,
  readManifest,
  verifyArtifacts,
  writeManifest,
} from "../../../src/images/manifest.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-manifest-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function entry(): Promise<ImageManifest> {
  const names = ["vmlinuz", "initrd", "root.qcow2", "run-x-vm"];
  const artifacts: ImageManifest["artifacts"] = {};
  for (const name of names) {
    await writeFile(join(dir, name), `contents of ${name}\n`);
    artifacts[name] = await hashFile(join(dir, name));
  }
  const manifest: ImageManifest = {
    format: MANIFEST_FORMAT,
    id: "x-0123456789ab",
    recipe: "x",
    recipeHash: "0123456789ab",
    builtAt: new Date().toISOString(),
    buildSeconds: 1,
    kernelRelease: "6.1",
    startScript: "run-x-vm",
    artifacts,
    packages: {},
    hostTools: {},
  };
  await writeManifest(dir, manifest);
  return manifest;
}

describe("image manifest", () => {
  it("verifies an intact entry", async () => {
    const manifest = await entry();
    expect(await readManifest(dir)).toEqual(manifest);
    expect(await verifyArtifacts(dir, manifest)).toEqual([]);
  });

  it("names the file whose checksum, size or existence is wrong", async () => {
    const manifest = await entry();
    await writeFile(join(dir, "initrd"), "contents of initrX\n");
    await truncate(join(dir, "vmlinuz"), 3);
    await rm(join(dir, "run-x-vm"));
    const problems = await verifyArtifacts(dir, manifest);
    expect(problems).toEqual(
      expect.arrayContaining([
        { file: "initrd", problem: expect.stringMatching(/^sha256 /) },
        { file: "vmlinuz", problem: expect.stringMatching(/^size 3 B/) },
        { file: "run-x-vm", problem: "missing" },
      ]),
    );
    expect(problems).toHaveLength(3);
  });

  it("treats an unreadable manifest as no entry", async () => {
    await writeFile(join(dir, "manifest.json"), "{ not json");
    expect(await readManifest(dir)).toBeUndefined();
  });
});
