import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Deadline } from "../../../src/deadline.ts";
import { ErrorCodes, GuestCommandError } from "../../../src/errors.ts";
import { BackdoorShell } from "../../../src/guest/backdoor-shell.ts";
import { TransferPort } from "../../../src/guest/transfer-port.ts";
import { type LocalBackdoor, startLocalBackdoor } from "../../helpers/local-backdoor.ts";

let peer: LocalBackdoor;
let shell: BackdoorShell;
let port: TransferPort;
let host: string;

const describeNothing = () => ["(no console)"];
const call = (timeout = 20_000) => ({
  deadline: new Deadline("copy", { timeout }, timeout),
  describe: describeNothing,
});
const deadline = (timeout = 10_000) => new Deadline("test", { timeout }, timeout);
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

async function start(transferDelayMs = 0): Promise<void> {
  peer.kill();
  peer = await startLocalBackdoor({ restarts: true, transferDelayMs });
  shell = await BackdoorShell.connect(peer.streams, deadline(), describeNothing);
  port = new TransferPort(peer.transfer);
}

beforeEach(async () => {
  host = mkdtempSync(join(tmpdir(), "corral-transfer-"));
  peer = await startLocalBackdoor({ restarts: true });
  shell = await BackdoorShell.connect(peer.streams, deadline(), describeNothing);
  port = new TransferPort(peer.transfer);
});

afterEach(() => {
  peer.kill();
  rmSync(host, { recursive: true, force: true });
});

/** The guest side's path for `name` (the local shell's folder). */
const guest = (name: string) => join(peer.dir, name);

async function alive(): Promise<void> {
  const reply = await shell.exec("echo alive", deadline(30_000), describeNothing);
  expect(reply.stdout.toString()).toBe("alive\n");
}

/** A small tree: nested folders, an empty one, a symlink, an executable and a FIFO (skipped). */
function makeTree(root: string): void {
  mkdirSync(join(root, "a/b"), { recursive: true });
  mkdirSync(join(root, "empty"));
  writeFileSync(join(root, "a/b/deep.bin"), randomBytes(100_000));
  writeFileSync(join(root, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  symlinkSync("a/b/deep.bin", join(root, "link"));
  spawnSync("mkfifo", [join(root, "fifo")]);
}

function expectSameTree(from: string, to: string, extra: string[] = []): void {
  expect(readdirSync(to).sort()).toEqual(["a", "empty", ...extra, "link", "run.sh"]);
  expect(readFileSync(join(to, "a/b/deep.bin"))).toEqual(readFileSync(join(from, "a/b/deep.bin")));
  expect(readlinkSync(join(to, "link"))).toBe("a/b/deep.bin");
  expect(statSync(join(to, "run.sh")).mode & 0o777).toBe(0o755);
  expect(readdirSync(join(to, "empty"))).toEqual([]);
}

describe("TransferPort against a real bash", () => {
  it("copies files both ways byte for byte, with their permission bits", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    writeFileSync(join(host, "in.bin"), data, { mode: 0o640 });
    expect(await port.toGuest(shell, join(host, "in.bin"), guest("deep/in.bin"), call())).toEqual({
      kind: "file",
    });
    expect(sha256(readFileSync(guest("deep/in.bin")))).toBe(sha256(data));
    expect(statSync(guest("deep/in.bin")).mode & 0o777).toBe(0o640);
    expect(await port.toHost(shell, guest("deep/in.bin"), join(host, "back.bin"), call())).toEqual({
      kind: "file",
    });
    expect(sha256(readFileSync(join(host, "back.bin")))).toBe(sha256(data));
    writeFileSync(join(host, "empty"), "");
    await port.toGuest(shell, join(host, "empty"), guest("empty"), call());
    expect(readFileSync(guest("empty")).length).toBe(0);
    await port.toHost(shell, guest("empty"), join(host, "empty-back"), call());
    expect(readFileSync(join(host, "empty-back")).length).toBe(0);
    // Nothing is left beside the targets.
    expect(readdirSync(guest("deep"))).toEqual(["in.bin"]);
    expect(readdirSync(host).sort()).toEqual(["back.bin", "empty", "empty-back", "in.bin"]);
  });

  it("hashes a file's bytes in the guest as they pass, both ways, on request", async () => {
    const data = randomBytes(5 * 1024 * 1024 + 3);
    writeFileSync(join(host, "in.bin"), data);
    expect(await port.toGuest(shell, join(host, "in.bin"), guest("in.bin"), call(), true)).toEqual({
      kind: "file",
      sha256: sha256(data),
    });
    expect(sha256(readFileSync(guest("in.bin")))).toBe(sha256(data));
    expect(await port.toHost(shell, guest("in.bin"), join(host, "back.bin"), call(), true)).toEqual(
      { kind: "file", sha256: sha256(data) },
    );
    expect(sha256(readFileSync(join(host, "back.bin")))).toBe(sha256(data));
    writeFileSync(join(host, "empty"), "");
    expect(await port.toGuest(shell, join(host, "empty"), guest("empty"), call(), true)).toEqual({
      kind: "file",
      sha256: sha256(Buffer.alloc(0)),
    });
    await alive();
  });

  it("waits for the rest of a copy out without a deadline (timeout Infinity)", async () => {
    const data = randomBytes(1024 * 1024);
    writeFileSync(guest("in.bin"), data);
    const unlimited = {
      deadline: new Deadline("copy", { timeout: Number.POSITIVE_INFINITY }, 20_000),
      describe: describeNothing,
    };
    await port.toHost(shell, guest("in.bin"), join(host, "back.bin"), unlimited);
    expect(sha256(readFileSync(join(host, "back.bin")))).toBe(sha256(data));
  });

  it("copies folders both ways as trees, merging into an existing folder", async () => {
    makeTree(join(host, "tree"));
    expect(await port.toGuest(shell, join(host, "tree"), guest("copy"), call())).toEqual({
      kind: "directory",
    });
    expectSameTree(join(host, "tree"), guest("copy"));
    expect(await port.toHost(shell, guest("copy"), join(host, "back"), call(), true)).toEqual({
      kind: "directory",
    });
    expectSameTree(join(host, "tree"), join(host, "back"));
    mkdirSync(join(host, "more"));
    writeFileSync(join(host, "more/extra"), "extra\n");
    await port.toGuest(shell, join(host, "more"), guest("copy"), call());
    expect(readFileSync(guest("copy/extra"), "utf8")).toBe("extra\n");
    expectSameTree(join(host, "tree"), guest("copy"), ["extra"]);
    expect(readdirSync(peer.dir).filter((name) => name.includes("corral-copy"))).toEqual([]);
  });

  it("refuses sockets, devices and FIFOs at once on both sides, and missing sources", async () => {
    spawnSync("mkfifo", [join(host, "fifo")]);
    const started = performance.now();
    const fifo = await port.toGuest(shell, join(host, "fifo"), guest("x"), call()).catch((e) => e);
    expect(fifo).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: /is a FIFO/ });
    const device = await port
      .toHost(shell, "/dev/null", join(host, "null"), call())
      .catch((e) => e);
    expect(device).toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: /\/dev\/null in the guest is a character special file/,
    });
    const missing = await port
      .toHost(shell, guest("no-such"), join(host, "y"), call())
      .catch((e) => e);
    expect(missing).toMatchObject({ code: ErrorCodes.NOT_FOUND });
    const missingHere = await port
      .toGuest(shell, join(host, "no-such"), guest("y"), call())
      .catch((e) => e);
    expect(missingHere).toMatchObject({ code: ErrorCodes.NOT_FOUND });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(existsSync(join(host, "null"))).toBe(false);
    await alive();
  });

  it("stays in step after the guest fails to write, and leaves nothing behind", async () => {
    writeFileSync(join(host, "in.bin"), randomBytes(2_000_000));
    writeFileSync(guest("file"), "a file, not a folder\n");
    const error = await port
      .toGuest(shell, join(host, "in.bin"), guest("file/in.bin"), call())
      .catch((e) => e);
    expect(error).toBeInstanceOf(GuestCommandError);
    expect(error.stderr).toMatch(/cannot create directory/);
    const onHost = await port
      .toHost(shell, guest("file"), join(host, "in.bin/x"), call())
      .catch((e) => e);
    expect(onHost.code).toBe(ErrorCodes.HOST_COMMAND_FAILED);
    await port.toGuest(shell, join(host, "in.bin"), guest("ok.bin"), call());
    expect(readFileSync(guest("ok.bin"))).toEqual(readFileSync(join(host, "in.bin")));
    await alive();
  });

  it("stays in step when the host's file shrinks while it is sent, and writes nothing", async () => {
    writeFileSync(join(host, "in.bin"), randomBytes(4_000_000));
    // The shell is busy for a moment: the copy stats the file, then waits its turn.
    const busy = shell.exec("sleep 0.5", deadline(), describeNothing);
    const copy = port.toGuest(shell, join(host, "in.bin"), guest("in.bin"), call()).catch((e) => e);
    await sleep(200);
    truncateSync(join(host, "in.bin"), 1000);
    await busy;
    const error = await copy;
    expect(error).toMatchObject({ code: ErrorCodes.HOST_COMMAND_FAILED, message: /shrank/ });
    expect(existsSync(guest("in.bin"))).toBe(false);
    writeFileSync(join(host, "small"), "small\n");
    await port.toGuest(shell, join(host, "small"), guest("small"), call());
    expect(readFileSync(guest("small"), "utf8")).toBe("small\n");
  });

  it("stays in step when a copy passes its deadline half-way", async () => {
    await start(5);
    writeFileSync(join(host, "big.bin"), randomBytes(16 * 1024 * 1024));
    // The guest's side is stopped at the limit, with data still on the way.
    const started = performance.now();
    const error = await port
      .toGuest(shell, join(host, "big.bin"), guest("big.bin"), call(1000))
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(error.message).toMatch(/copy: timed out after 1\.0 s/);
    expect(performance.now() - started).toBeLessThan(1000 + 2000 + 3000);
    writeFileSync(join(host, "small"), "small\n");
    await port.toGuest(shell, join(host, "small"), guest("small"), call());
    expect(readFileSync(guest("small"), "utf8")).toBe("small\n");
    expect(readdirSync(peer.dir).filter((name) => name.includes("corral-copy"))).toEqual([]);
  });

  it("reports a timeout deep in a copy as CORRAL_TIMEOUT of the verb the user called", async () => {
    // The verb's deadline travels down as it is: the caller's signal, which also fires when the
    // verb's time is up, must not turn the timeout into an abort under another name.
    await start(5);
    writeFileSync(join(host, "big.bin"), randomBytes(16 * 1024 * 1024));
    const caller = new AbortController();
    const verb = new Deadline(
      `vm: copyFromHost(${host}/big.bin, big.bin)`,
      { timeout: 1000, signal: caller.signal },
      0,
    );
    const error = await port
      .toGuest(shell, join(host, "big.bin"), guest("big.bin"), {
        deadline: verb,
        describe: describeNothing,
        signal: caller.signal,
      })
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(error.message).toMatch(
      /^vm: copyFromHost\(.*\/big\.bin, big\.bin\): timed out after 1\.0 s/,
    );
    await alive();
  });

  it("stays in step when the shell dies during a copy, once the guest starts a new one", async () => {
    await start(5);
    writeFileSync(join(host, "big.bin"), randomBytes(16 * 1024 * 1024));
    const copy = port
      .toGuest(shell, join(host, "big.bin"), guest("big.bin"), call())
      .catch((e) => e);
    for (let i = 0; i < 200; i++) {
      if (readdirSync(peer.dir).some((name) => name.startsWith(".corral-copy"))) break;
      await sleep(10);
    }
    peer.killShell(true);
    expect((await copy).code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    const data = randomBytes(100_000);
    writeFileSync(join(host, "after.bin"), data);
    await port.toGuest(shell, join(host, "after.bin"), guest("after.bin"), call());
    expect(readFileSync(guest("after.bin"))).toEqual(data);
    await alive();
  });
});
