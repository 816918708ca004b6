// File copies through the transfer disk on real guests: big files both ways with their sha256,
// folders, two copies at once, failures that leave nothing behind, the user's disks keeping their
// names, snapshots and their clones, and the `corral.xfer` port where a machine has no disk.

import { createHash, randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, GuestCommandError, Machine } from "corral";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const hostDir = mkdtempSync(join(tmpdir(), "corral-transfer-disk-"));
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
const MIB = 1024 * 1024;
const unlimited = { timeout: Number.POSITIVE_INFINITY };

/** The guest's disk names and serials, `vda:` for none. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
const DISKS = 'for b in /sys/block/vd*; do echo "${b##*/}:$(cat "$b/serial" 2>/dev/null)"; done';

/** The transfer disk's host file holds no data: it is all a hole. */
function expectEmptyDisk(machine: Machine): void {
  const disk = statSync(join(machine.stateDir ?? "", "transfer.raw"));
  expect(disk.size).toBe(64 * 1024 ** 3);
  expect(disk.blocks).toBe(0);
}

let machine: Machine;

beforeAll(async () => {
  // A user's data disk: it keeps /dev/vdb, the transfer disk comes after it.
  const userDisk = join(hostDir, "user.raw");
  writeFileSync(userDisk, "");
  truncateSync(userDisk, 32 * MIB);
  machine = new Machine({ drives: [{ path: userDisk, media: "disk", format: "raw" }] });
  await machine.waitForShell();
});

afterAll(async () => {
  await machine?.[Symbol.asyncDispose]();
  rmSync(hostDir, { recursive: true, force: true });
});

describe("the transfer disk", () => {
  it("comes after the user's disks, which keep their names", async () => {
    expect(await machine.succeed(DISKS)).toBe("vda:\nvdb:\nvdc:corral-xfer\n");
    expect(await machine.succeed("blockdev --getsize64 /dev/vdb")).toBe(`${32 * MIB}\n`);
  });

  it("copies a big file both ways with the guest's sha256, and leaves the disk empty", async () => {
    const original = randomBytes(96 * MIB + 333);
    const source = join(hostDir, "big.bin");
    writeFileSync(source, original);
    const options = { sha256: true, ...unlimited };
    expect(await machine.copyFromHost(source, "/root/deep/big.bin", options)).toEqual({
      kind: "file",
      sha256: sha256(original),
    });
    expect(await machine.succeed("stat -c %s /root/deep/big.bin; ls -A /root/deep")).toBe(
      `${original.length}\nbig.bin\n`,
    );
    const back = join(hostDir, "back/big.bin");
    expect(await machine.copyFromVm("/root/deep/big.bin", back, options)).toEqual({
      kind: "file",
      sha256: sha256(original),
    });
    expect(sha256(readFileSync(back))).toBe(sha256(original));
    expect(readdirSync(join(hostDir, "back"))).toEqual(["big.bin"]);
    expectEmptyDisk(machine);
    await machine.succeed("rm -r /root/deep");
  }, 300_000);

  it("copies folders and empty files, and two copies at once", async () => {
    const tree = join(hostDir, "tree");
    mkdirSync(join(tree, "a/b"), { recursive: true });
    const payload = randomBytes(5 * MIB + 1);
    writeFileSync(join(tree, "a/b/payload.bin"), payload);
    writeFileSync(join(tree, "empty"), "");
    const other = join(hostDir, "other.bin");
    const otherBytes = randomBytes(3 * MIB);
    writeFileSync(other, otherBytes);
    await Promise.all([
      machine.copyFromHost(tree, "/root/tree", unlimited),
      machine.copyFromHost(other, "/root/other.bin", unlimited),
    ]);
    expect(
      await machine.succeed("cd /root/tree && find . | sort; sha256sum < a/b/payload.bin"),
    ).toBe(`.\n./a\n./a/b\n./a/b/payload.bin\n./empty\n${sha256(payload)}  -\n`);
    expect(await machine.succeed("sha256sum < /root/other.bin")).toBe(`${sha256(otherBytes)}  -\n`);
    const [treeBack, fileBack] = await Promise.all([
      machine.copyFromVm("/root/tree", join(hostDir, "tree-back"), unlimited),
      machine.copyFromVm("/root/tree/empty", join(hostDir, "empty-back"), unlimited),
    ]);
    expect([treeBack, fileBack]).toEqual([{ kind: "directory" }, { kind: "file" }]);
    expect(readFileSync(join(hostDir, "tree-back/a/b/payload.bin"))).toEqual(payload);
    expect(readFileSync(join(hostDir, "empty-back")).length).toBe(0);
    expectEmptyDisk(machine);
  }, 120_000);

  it("leaves nothing behind in the guest or on the host when a copy fails", async () => {
    await machine.succeed("mkdir -p /mnt/tiny && mount -t tmpfs -o size=1m tmpfs /mnt/tiny");
    const source = join(hostDir, "four-mib.bin");
    writeFileSync(source, randomBytes(4 * MIB));
    const full = await machine.copyFromHost(source, "/mnt/tiny/x.bin").catch((e: unknown) => e);
    expect(full).toBeInstanceOf(GuestCommandError);
    expect((full as GuestCommandError).stderr).toMatch(/No space left on device/);
    expect(await machine.succeed("ls -A /mnt/tiny; umount /mnt/tiny")).toBe("");
    expectEmptyDisk(machine);
    // The host side fails after the guest wrote the disk: a file onto an existing folder.
    await machine.succeed("head -c 2000000 /dev/urandom > /root/out.bin");
    mkdirSync(join(hostDir, "taken"));
    await expect(machine.copyFromVm("/root/out.bin", join(hostDir, "taken"))).rejects.toMatchObject(
      { code: ErrorCodes.INVALID_ARGUMENT },
    );
    expect(readdirSync(hostDir).filter((name) => name.includes(".corral-"))).toEqual([]);
    expect(readdirSync(join(hostDir, "taken"))).toEqual([]);
    expectEmptyDisk(machine);
    await expect(machine.copyFromVm("/no/such", join(hostDir, "x"))).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
    await expect(machine.copyFromVm("/dev/null", join(hostDir, "x"))).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: /character special file/,
    });
  }, 120_000);
});

describe("snapshots and machines without the disk", () => {
  it("clones of a snapshot each have their own disk; a machine without one copies over the port", async () => {
    const snapshots = join(hostDir, "snapshots");
    mkdirSync(snapshots);
    await using original = new Machine();
    await original.waitForShell();
    await original.snapshot(join(snapshots, "with"));
    await using portOnly = new Machine({ transferDisk: false });
    await portOnly.waitForShell();
    await portOnly.snapshot(join(snapshots, "without"));

    const bytes = randomBytes(2 * MIB + 5);
    const source = join(hostDir, "clone.bin");
    writeFileSync(source, bytes);
    await using first = await Machine.fromSnapshot(join(snapshots, "with"));
    await using second = await Machine.fromSnapshot(join(snapshots, "with"));
    // A snapshot without the disk (as every snapshot taken before it) restores without one.
    await using old = await Machine.fromSnapshot(join(snapshots, "without"));
    const cases: [Machine, string][] = [
      [first, "vda:\nvdb:corral-xfer\n"],
      [second, "vda:\nvdb:corral-xfer\n"],
      [old, "vda:\n"],
      [portOnly, "vda:\n"],
    ];
    for (const [index, [clone, disks]] of cases.entries()) {
      expect(await clone.succeed(DISKS)).toBe(disks);
      expect(await clone.copyFromHost(source, "/root/clone.bin", { sha256: true })).toEqual({
        kind: "file",
        sha256: sha256(bytes),
      });
      const back = join(hostDir, `clone-${index}.bin`);
      await clone.copyFromVm("/root/clone.bin", back);
      expect(readFileSync(back)).toEqual(bytes);
    }
    expect(first.stateDir).not.toBe(second.stateDir);
    expectEmptyDisk(first);
    expectEmptyDisk(second);
    expect(readdirSync(old.stateDir ?? "")).not.toContain("transfer.raw");
  }, 300_000);
});
