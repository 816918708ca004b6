import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  makeOverlayTemplate,
  OVERLAY_TEMPLATE,
  overlayFromTemplate,
} from "../../../../src/backends/qemu/overlay-template.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-overlay-template-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function info(path: string): Record<string, unknown> {
  return JSON.parse(
    execFileSync("qemu-img", ["info", "--output=json", path], { encoding: "utf8" }),
  );
}

/** A snapshot-like folder: a qcow2 disk with some data, and the template beside it. */
async function snapshotFolder(name: string): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder);
  const disk = join(folder, "disk.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "64M"]);
  execFileSync("qemu-io", ["-c", "write -P 0x5a 1M 64k", disk], { stdio: "ignore" });
  expect(await makeOverlayTemplate(disk)).toBe(OVERLAY_TEMPLATE);
  return disk;
}

describe("overlay templates", () => {
  it("give an overlay naming its base by absolute path, as qemu-img create would", async () => {
    const base = await snapshotFolder("snapshot");
    const overlay = join(dir, "clone.qcow2");
    expect(await overlayFromTemplate(base, overlay)).toBe(true);
    expect(info(overlay)).toMatchObject({
      format: "qcow2",
      "virtual-size": 64 * 2 ** 20,
      "backing-filename": base,
      "full-backing-filename": base,
      "backing-filename-format": "qcow2",
    });
    expect(spawnSync("qemu-img", ["check", "-q", overlay]).status).toBe(0);
    // The base's data shows through, and a write stays the overlay's.
    const read = spawnSync("qemu-io", ["-c", "read -P 0x5a 1M 64k", overlay], { encoding: "utf8" });
    expect(read.stdout).not.toContain("Pattern verification failed");
    execFileSync("qemu-io", ["-c", "write -P 0x11 1M 4k", overlay], { stdio: "ignore" });
    const base2 = spawnSync("qemu-io", ["-c", "read -P 0x5a 1M 64k", base], { encoding: "utf8" });
    expect(base2.stdout).not.toContain("Pattern verification failed");
  });

  it("names a base whose path is shorter than the template's own", async () => {
    const base = await snapshotFolder("s");
    execFileSync("qemu-img", [
      ...["rebase", "-q", "-u", "-F", "qcow2"],
      ...[
        "-b",
        join(dir, "s", `${"long-".repeat(40)}disk.qcow2`),
        join(dir, "s", OVERLAY_TEMPLATE),
      ],
    ]);
    const overlay = join(dir, "clone.qcow2");
    expect(await overlayFromTemplate(base, overlay)).toBe(true);
    expect(info(overlay)).toMatchObject({ "backing-filename": base });
  });

  it("writes nothing where there is no template, or a base's name is too long for qcow2", async () => {
    expect(await overlayFromTemplate(join(dir, "disk.qcow2"), join(dir, "clone.qcow2"))).toBe(
      false,
    );
    expect(existsSync(join(dir, "clone.qcow2"))).toBe(false);
    const base = await snapshotFolder("snapshot");
    // A name QEMU would refuse (over 1023 bytes) that still leads to the template.
    const longBase = `${dir}/snapshot/${"x".repeat(1100)}/../disk.qcow2`;
    expect(await overlayFromTemplate(longBase, join(dir, "clone.qcow2"))).toBe(false);
    expect(existsSync(join(dir, "clone.qcow2"))).toBe(false);
    expect(existsSync(base)).toBe(true);
  });
});
