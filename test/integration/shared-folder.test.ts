// The 9p shared folder: a machine with `sharedDir` on an image whose kernel has 9p
// (debian-12-full) mounts it at /tmp/shared, and file copies go through it.

import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { ensureImage } from "../../src/images/build-image.ts";
import { Machine } from "../../src/machine/machine.ts";
import { temporaryDir } from "../helpers/cli.ts";

let machine: Machine;
let shared: string;

beforeAll(async () => {
  await ensureImage("debian-12-full");
  // Shared by the tests, as the machine is: removed after the last one.
  shared = mkdtempSync(join(tmpdir(), "corral-shared-"));
}, 600_000);

afterAll(async () => {
  await machine?.[Symbol.asyncDispose]();
  rmSync(shared, { recursive: true, force: true });
});

describe("a 9p shared folder", () => {
  it("is mounted at /tmp/shared and carries copies both ways, byte for byte", async () => {
    const work = temporaryDir("corral-shared-work-");
    machine = new Machine({ image: "debian-12-full", sharedDir: shared });
    await machine.waitUntilSucceeds("mountpoint -q /tmp/shared", { timeout: 120_000 });
    writeFileSync(join(shared, "from-host"), "seen through 9p\n");
    expect(await machine.succeed("cat /tmp/shared/from-host")).toBe("seen through 9p\n");

    const data = randomBytes(3 * 1024 * 1024 + 7);
    const source = join(work, "in.bin");
    writeFileSync(source, data);
    const sum = createHash("sha256").update(data).digest("hex");
    expect(await machine.copyFromHost(source, "/root/deep/in.bin", { sha256: true })).toEqual({
      kind: "file",
      sha256: sum,
    });
    const guestSum = (await machine.succeed("sha256sum /root/deep/in.bin")).split(" ")[0];
    expect(guestSum).toBe(sum);
    expect(
      await machine.copyFromVm("/root/deep/in.bin", join(work, "back.bin"), { sha256: true }),
    ).toEqual({ kind: "file", sha256: sum });

    await machine.succeed("head -c 1000003 /dev/urandom > /root/out.bin");
    const target = join(work, "sub", "out.bin");
    await machine.copyFromVm("/root/out.bin", target);
    const hostSum = createHash("sha256").update(readFileSync(target)).digest("hex");
    expect(hostSum).toBe((await machine.succeed("sha256sum /root/out.bin")).split(" ")[0]);
    // The copies' files in the shared folder are gone once they are done.
    expect(readdirSync(shared)).toEqual(["from-host"]);
  });

  it("carries folders both ways as trees, and refuses what is neither file nor folder", async () => {
    const work = temporaryDir("corral-shared-tree-");
    const tree = join(work, "tree");
    mkdirSync(join(tree, "a/b"), { recursive: true });
    writeFileSync(join(tree, "a/b/deep"), "deep\n");
    symlinkSync("a/b/deep", join(tree, "link"));
    await machine.copyFromHost(tree, "/root/tree");
    expect(await machine.succeed("cat /root/tree/link; cd /root/tree && find . | sort")).toBe(
      "deep\n.\n./a\n./a/b\n./a/b/deep\n./link\n",
    );
    await machine.succeed("echo guest > /root/tree/a/new");
    await machine.copyFromVm("/root/tree", join(work, "back"));
    expect(readFileSync(join(work, "back/a/new"), "utf8")).toBe("guest\n");
    expect(readlinkSync(join(work, "back/link"))).toBe("a/b/deep");
    spawnSync("mkfifo", [join(work, "fifo")]);
    await expect(machine.copyFromHost(join(work, "fifo"), "/root/fifo")).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await expect(machine.copyFromVm("/dev/null", join(work, "null"))).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await expect(machine.copyFromVm("/no/such", join(work, "none"))).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
    expect(readdirSync(shared)).toEqual(["from-host"]);
  });

  it("reports a copy stuck in the guest as a timeout of the copy, not of an inner command", async () => {
    const work = temporaryDir("corral-shared-work-");
    writeFileSync(join(work, "small"), "small\n");
    // Nothing reads the FIFO, so the guest's cp waits on it until the copy's limit.
    await machine.succeed("mkfifo /root/stuck");
    const error = await machine
      .copyFromHost(join(work, "small"), "/root/stuck", { timeout: 3000 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "CORRAL_TIMEOUT",
      message: expect.stringMatching(
        /^debian-12-full: copyFromHost\(.*small, \/root\/stuck\): timed out after 3\.0 s/,
      ),
    });
    await machine.succeed("rm /root/stuck");
    expect(await machine.succeed("echo alive")).toBe("alive\n");
  });
});
