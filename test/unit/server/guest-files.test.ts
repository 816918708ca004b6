// The guest file routes over real HTTP on a daemon's unix socket, in front of a fake guest whose
// root is a temporary folder: a round trip checked by sha256 (header and trailer), stat in
// headers, removal; and refusals that leave nothing behind: bad paths, a wrong sha256, an upload
// over limits.maxUploadBytes (announced or not), mode for an archive, a missing file.

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { type FakeGuest, fakeGuest } from "../../helpers/fake-guest-ops.ts";
import { startTestDaemon, type TestDaemon } from "../../helpers/http.ts";
import { byteRequest } from "../../helpers/http-bytes.ts";

const MAX_UPLOAD_BYTES = 1024 * 1024;

let daemon: TestDaemon;
let guest: FakeGuest;
let socket: string;

beforeAll(async () => {
  guest = fakeGuest();
  daemon = await startTestDaemon({
    logLevel: "silent",
    limits: { maxVms: 64, maxUploadBytes: MAX_UPLOAD_BYTES },
    guests: async () => guest,
  });
  socket = daemon.listening.socket;
});

afterAll(async () => {
  await daemon?.[Symbol.asyncDispose]();
  rmSync(guest.root, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
const files = (path: string, extra = "") =>
  `/v1/vms/web/guest/files?path=${encodeURIComponent(path)}${extra}`;
/** Every entry under the fake guest's folder `dir`, to tell nothing was left behind. */
const entries = (dir: string) => readdirSync(guest.hostPath(dir));

describe("/v1/vms/{id}/guest/files", () => {
  it("writes a file from the body and reads it back, sha256 checked both ways", async () => {
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    const put = await byteRequest(socket, {
      method: "PUT",
      path: files("/srv/data.bin", "&mode=0640"),
      headers: { "x-corral-sha256": sha256(bytes) },
      body: bytes,
    });
    expect(put.status).toBe(200);
    expect(put.json).toEqual({
      path: "/srv/data.bin",
      sizeBytes: bytes.length,
      sha256: sha256(bytes),
    });
    expect(sha256(readFileSync(guest.hostPath("/srv/data.bin")))).toBe(sha256(bytes));

    const got = await byteRequest(socket, { method: "GET", path: files("/srv/data.bin") });
    expect(got.status).toBe(200);
    expect(got.headers).toMatchObject({
      "content-type": "application/octet-stream",
      "x-corral-type": "file",
      "x-corral-size": String(bytes.length),
      "x-corral-mode": "0640",
      trailer: "x-corral-sha256",
    });
    expect(got.body.equals(bytes)).toBe(true);
    expect(got.trailers["x-corral-sha256"]).toBe(sha256(bytes));

    const head = await byteRequest(socket, { method: "HEAD", path: files("/srv") });
    expect(head.status).toBe(200);
    expect(head.headers).toMatchObject({ "x-corral-type": "directory" });
    expect(head.body.length).toBe(0);

    const removed = await byteRequest(socket, { method: "DELETE", path: files("/srv/data.bin") });
    expect(removed.status).toBe(204);
    expect(existsSync(guest.hostPath("/srv/data.bin"))).toBe(false);
  });

  it("takes a chunked body of any content type", async () => {
    const put = await byteRequest(socket, {
      method: "PUT",
      path: files("/srv/chunked.txt"),
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: Buffer.from("a=1&b=2"),
      chunked: true,
    });
    expect(put.status).toBe(200);
    expect(readFileSync(guest.hostPath("/srv/chunked.txt"), "utf8")).toBe("a=1&b=2");
  });

  it("refuses a wrong sha256 with 422, leaving the target as it was", async () => {
    writeFileSync(guest.hostPath("/srv/keep.txt"), "old");
    const before = entries("/srv");
    const put = await byteRequest(socket, {
      method: "PUT",
      path: files("/srv/keep.txt"),
      headers: { "x-corral-sha256": "0".repeat(64) },
      body: Buffer.from("new contents"),
    });
    expect(put.status).toBe(422);
    expect(put.json).toMatchObject({
      code: ErrorCodes.CHECKSUM_MISMATCH,
      message: expect.stringContaining(
        `have sha256 ${sha256(Buffer.from("new contents"))}, not 000`,
      ),
    });
    expect(readFileSync(guest.hostPath("/srv/keep.txt"), "utf8")).toBe("old");
    expect(entries("/srv")).toEqual(before);
  });

  it("refuses an upload over the limit: at once when announced, else when passed", async () => {
    const writesBefore = guest.writes;
    const announced = await byteRequest(socket, {
      method: "PUT",
      path: files("/srv/big.bin"),
      body: Buffer.alloc(MAX_UPLOAD_BYTES + 1),
    });
    expect(announced.status).toBe(413);
    expect(announced.json).toMatchObject({
      code: ErrorCodes.UPLOAD_TOO_LARGE,
      message: expect.stringContaining(`is ${MAX_UPLOAD_BYTES + 1} bytes (Content-Length)`),
    });
    expect(guest.writes).toBe(writesBefore);

    const before = entries("/srv");
    const streamed = await byteRequest(socket, {
      method: "PUT",
      path: files("/srv/big.bin"),
      body: Buffer.alloc(MAX_UPLOAD_BYTES * 2),
      chunked: true,
    });
    expect(streamed.status).toBe(413);
    expect(streamed.json).toMatchObject({
      code: ErrorCodes.UPLOAD_TOO_LARGE,
      message: expect.stringContaining(`passed ${MAX_UPLOAD_BYTES} bytes`),
    });
    expect(guest.writes).toBe(writesBefore + 1);
    await expect.poll(() => entries("/srv")).toEqual(before);
  });

  it("refuses relative paths, '..' segments, NUL bytes, a Windows path for Linux", async () => {
    const cases: [string, string][] = [
      ["etc/hosts", "is not absolute"],
      ["/srv/../etc/shadow", "has a '..' segment"],
      ["/srv/..", "has a '..' segment"],
      ["/srv/a\0b", "holds a NUL byte"],
      ["C:\\Windows\\win.ini", "is not absolute for a Linux guest"],
    ];
    for (const method of ["GET", "PUT", "DELETE"]) {
      for (const [path, problem] of cases) {
        const answer = await byteRequest(socket, {
          method,
          path: files(path),
          ...(method === "PUT" && { body: Buffer.from("x") }),
        });
        expect(answer.status, `${method} ${path}`).toBe(400);
        expect(answer.json).toMatchObject({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: expect.stringContaining(problem),
        });
      }
    }
    expect(existsSync(guest.hostPath("/etc"))).toBe(false);
  });

  it("answers 404 for a missing file; refuses mode with archive=tar", async () => {
    const missing = await byteRequest(socket, { method: "GET", path: files("/srv/none") });
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ code: ErrorCodes.NOT_FOUND });
    expect((await byteRequest(socket, { method: "HEAD", path: files("/srv/none") })).status).toBe(
      404,
    );
    expect((await byteRequest(socket, { method: "DELETE", path: files("/srv/none") })).status).toBe(
      404,
    );
    // Folders themselves move through the guest's tar: test/integration/guest-api.test.ts.
    const archive = await byteRequest(socket, {
      method: "PUT",
      path: files("/srv/dir", "&archive=tar&mode=0644"),
      body: Buffer.from("x"),
    });
    expect(archive.status).toBe(400);
    expect(archive.json).toMatchObject({ message: expect.stringContaining("do not apply") });
    expect(existsSync(guest.hostPath("/srv/dir"))).toBe(false);
  });
});
