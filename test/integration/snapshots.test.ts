// Snapshots on the real guest: save a running machine, start clones from it at once, and refuse
// snapshots that do not fit or were damaged. The snapshot folder is never modified.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { sparseDigest } from "../../src/host/sparse-digest.ts";
import { Machine } from "../../src/machine/machine.ts";
import { temporaryDir } from "../helpers/cli.ts";

let original: Machine;
let root: string;
let snapshot: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "corral-snapshots-"));
  snapshot = join(root, "booted");
  original = new Machine({ memoryMiB: 512 });
  await original.waitForUnit("multi-user.target");
  // The image's clock setter, which restores use (they fall back on `date -s` without it).
  await original.waitForUnit("corral-clock.service");
  await original.succeed(
    "echo from-the-original > /root/marker",
    "mkdir -p /srv && echo served > /srv/index.html",
    "systemd-run --unit=web busybox httpd -f -p 80 -h /srv",
  );
  await original.waitForOpenPort(80);
  await original.snapshot(snapshot);
}, 300_000);

afterAll(async () => {
  await original?.[Symbol.asyncDispose]();
  rmSync(root, { recursive: true, force: true });
});

describe("snapshots", () => {
  it("writes the state, the RAM as a sparse file, a frozen disk layer and a manifest, and the machine goes on", async () => {
    expect(readdirSync(snapshot).sort()).toEqual([
      "disk-overlay.qcow2",
      "disk.qcow2",
      "manifest.json",
      "memory",
      "state",
    ]);
    const manifest = JSON.parse(readFileSync(join(snapshot, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({
      format: 3,
      source: { kind: "image" },
      backend: "qemu",
      config: { memoryMiB: 512 },
      memory: "memory",
      files: { memory: { sizeBytes: 512 * 2 ** 20, digest: "sha256-nonzero-mib" } },
    });
    expect(manifest.vmmVersion).toMatch(/^QEMU emulator version /);
    // The idle shell's session: clones use it as it is, without sending the prelude again.
    expect(manifest.shellSession).toMatch(/^[0-9a-f]{32}$/);
    expect(Object.keys(manifest.files).sort()).toEqual([
      "disk-overlay.qcow2",
      "disk.qcow2",
      "memory",
      "state",
    ]);
    // The stream holds the devices only; the RAM's untouched pages are holes in the file.
    expect(statSync(join(snapshot, "state")).size).toBeLessThan(8 * 2 ** 20);
    expect(statSync(join(snapshot, "memory")).blocks * 512).toBeLessThan(512 * 2 ** 20);
    // The checksum was taken from the copy's written MiBs after the VM resumed: it is the file's.
    expect(manifest.files.memory.sha256).toBe(await sparseDigest(join(snapshot, "memory")));
    await original.succeed("echo written-after-the-snapshot > /root/after");
    expect(await original.succeed("cat /root/marker")).toBe("from-the-original\n");
  });

  it("starts three clones at once; each has the marker and the service, and their writes stay their own", async () => {
    const memoryBefore = fileSha256(join(snapshot, "memory"));
    await clockBehind(snapshot);
    const clones = await Promise.all(
      [1, 2, 3].map((n) => Machine.fromSnapshot(snapshot, { name: `clone${n}` })),
    );
    try {
      await Promise.all(clones.map((clone) => clone.waitForShell({ timeout: 60_000 })));
      for (const clone of clones) {
        expect(await clone.succeed("cat /root/marker")).toBe("from-the-original\n");
        await clone.requireUnitState("web.service");
        expect(await clone.succeed("curl -sf http://localhost/")).toBe("served\n");
        await clone.fail("test -e /root/after");
        await expectClockSet(clone);
      }
      await clones[0]?.succeed("echo only-in-clone-1 > /root/mine", "sync");
      await clones[1]?.fail("test -e /root/mine");
      await clones[2]?.fail("test -e /root/mine");
      // RAM written in one clone (a tmpfs file is guest RAM) is its own, and never the file's.
      await clones[0]?.succeed(
        "head -c 64M /dev/urandom > /dev/shm/noise",
        "echo ram-1 > /dev/shm/mine",
      );
      await clones[1]?.fail("test -e /dev/shm/mine");
    } finally {
      await Promise.all(clones.map((clone) => clone[Symbol.asyncDispose]()));
    }
    expect(fileSha256(join(snapshot, "memory"))).toBe(memoryBefore);
    // The snapshot itself is untouched: a new clone passes the checksums and sees none of it.
    await using later = await Machine.fromSnapshot(snapshot, { name: "later" });
    await later.fail("test -e /root/mine");
    await later.fail("test -e /root/after");
  });

  it("refuses a snapshot made for another machine config, QEMU version or image", async () => {
    await expect(
      Machine.fromSnapshot(snapshot, { memoryMiB: 768 }).then((m) => m.start()),
    ).rejects.toMatchObject({
      code: ErrorCodes.SNAPSHOT_INVALID,
      message: expect.stringContaining("machine config memoryMiB is 512, not 768"),
    });
    for (const [change, expected] of [
      [
        (m: Record<string, unknown>) =>
          Object.assign(m, { vmmVersion: "QEMU emulator version 1.0" }),
        "made with qemu (QEMU emulator version 1.0)",
      ],
      [
        (m: Record<string, unknown>) =>
          Object.assign(m, {
            source: { kind: "image", imageId: "debian-12-000000000000", recipeHash: "0" },
          }),
        "made from image debian-12-000000000000",
      ],
    ] as const) {
      const copy = linkedCopy(snapshot, join(root, `changed-${Math.random()}`));
      const path = join(copy, "manifest.json");
      const manifest = JSON.parse(readFileSync(path, "utf8"));
      writeFileSync(path, JSON.stringify(change(manifest)));
      const clone = new Machine({ memoryMiB: 512, snapshot: copy });
      await expect(clone.start()).rejects.toMatchObject({
        code: ErrorCodes.SNAPSHOT_INVALID,
        message: expect.stringContaining(expected),
      });
      await clone[Symbol.asyncDispose]();
    }
  });

  it("refuses a snapshot file that fails its checksum, naming the file", async () => {
    const copy = join(root, "damaged");
    cpSync(snapshot, copy, { recursive: true });
    const state = join(copy, "state");
    const bytes = readFileSync(state);
    const middle = bytes.length >> 1;
    bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
    writeFileSync(state, bytes);
    const clone = await Machine.fromSnapshot(copy);
    await expect(clone.start()).rejects.toMatchObject({
      code: ErrorCodes.SNAPSHOT_INVALID,
      message: expect.stringContaining(`snapshot file ${state} fails its checksum`),
    });
    await clone[Symbol.asyncDispose]();
  });

  it("refuses a memory file that fails its checksum", async () => {
    const copy = join(root, "damaged-memory");
    mkdirSync(copy);
    for (const name of readdirSync(snapshot)) {
      spawnSync("cp", ["--sparse=always", join(snapshot, name), join(copy, name)]);
    }
    const memory = join(copy, "memory");
    const file = openSync(memory, "r+");
    writeSync(file, Buffer.from([0x5a]), 0, 1, 300 * 2 ** 20 + 17);
    closeSync(file);
    const clone = await Machine.fromSnapshot(copy);
    await expect(clone.start()).rejects.toMatchObject({
      code: ErrorCodes.SNAPSHOT_INVALID,
      message: expect.stringContaining(`snapshot file ${memory} fails its checksum`),
    });
    await clone[Symbol.asyncDispose]();
  });

  it("snapshots a clone (its RAM is a private mapping: streamed), and that snapshot restores", async () => {
    const second = join(root, "of-a-clone");
    {
      await using clone = await Machine.fromSnapshot(snapshot, { name: "parent" });
      await clone.succeed("echo from-the-clone > /root/clone-marker");
      // Its restores set the clock with `date -s`.
      await clone.succeed("systemctl stop corral-clock.service");
      await clone.snapshot(second);
    }
    const path = join(second, "manifest.json");
    const { shellSession, ...manifest } = JSON.parse(readFileSync(path, "utf8"));
    expect(manifest.memory).toBeUndefined();
    expect(readdirSync(second).sort()).toEqual([
      "disk-overlay.qcow2",
      "disk.qcow2",
      "manifest.json",
      "state",
    ]);
    // As a snapshot taken before manifests recorded the shell's session: the prelude is sent again.
    expect(shellSession).toMatch(/^[0-9a-f]{32}$/);
    writeFileSync(path, JSON.stringify(manifest));
    await clockBehind(second);
    await using grandchild = await Machine.fromSnapshot(second, { name: "grandchild" });
    expect(await grandchild.succeed("cat /root/marker /root/clone-marker")).toBe(
      "from-the-original\nfrom-the-clone\n",
    );
    await expectClockSet(grandchild);
  });

  it("refuses two clones that would share one writable disk", async () => {
    const stateDir = temporaryDir("corral-shared-state-");
    await using first = await Machine.fromSnapshot(snapshot, { name: "first", stateDir });
    await first.start();
    const second = await Machine.fromSnapshot(snapshot, { name: "second", stateDir });
    await expect(second.start()).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("two machines cannot share one writable disk"),
    });
    await second[Symbol.asyncDispose]();
    expect(await first.succeed("cat /root/marker")).toBe("from-the-original\n");
  });

  it("fails cleanly when the disk fills up: an error, nothing left behind, the machine goes on", async () => {
    const small = temporaryDir("corral-small-disk-");
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", small]);
    expect(mounted.status, `mount a 16 MiB tmpfs (needs root): ${mounted.stderr}`).toBe(0);
    try {
      const target = join(small, "too-big");
      await expect(original.snapshot(target)).rejects.toMatchObject({
        code: ErrorCodes.SNAPSHOT_FAILED,
      });
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(small)).toEqual([]);
      expect(await original.succeed("cat /root/marker")).toBe("from-the-original\n");
    } finally {
      spawnSync("umount", [small]);
    }
  });
});

/** Waits until a clone of `snapshot` would wake with its clock clearly behind. */
async function clockBehind(snapshot: string): Promise<void> {
  const { createdAt } = JSON.parse(readFileSync(join(snapshot, "manifest.json"), "utf8"));
  await sleep(Math.max(0, Date.parse(createdAt) + 3000 - Date.now()));
}

/** The clock was set on restore, not left at the time of the snapshot. */
async function expectClockSet(clone: Machine): Promise<void> {
  const before = Date.now() / 1000;
  const guestNow = Number(await clone.succeed("date +%s.%N"));
  const after = Date.now() / 1000;
  // The snapshot is at least 3 s old: a clock not set is that far behind, one set twice that far
  // ahead. The time sent takes up to ~1 s to reach three clones restored at once under TCG.
  expect(guestNow).toBeGreaterThan(before - 2);
  expect(guestNow).toBeLessThan(after + 1);
}

function fileSha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** A copy of a snapshot folder whose big files are hard links (the manifest is a real copy). */
function linkedCopy(from: string, to: string): string {
  mkdirSync(to);
  for (const name of readdirSync(from)) {
    if (name === "manifest.json") cpSync(join(from, name), join(to, name));
    else spawnSync("ln", [join(from, name), join(to, name)]);
  }
  return to;
}
