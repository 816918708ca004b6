// /v1/images and /v1/jobs over real HTTP on a daemon's unix socket, with a real ImageService
// over a temporary store: imports of real files, validation, 404s and 409s, and the OpenAPI
// document. Image builds are in test/integration/image-build-job.test.ts (they need the image cache).

import { existsSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { ImageService } from "../../../src/manager/images.ts";
import { JobService } from "../../../src/manager/jobs.ts";
import { Store } from "../../../src/store/store.ts";
import { http, startTestDaemon, type TestDaemon } from "../../helpers/http.ts";
import { makeImageFiles, sha256Of } from "../../helpers/image-files.ts";
import { newVm } from "../../helpers/store.ts";

let daemon: TestDaemon;
let store: Store;
let images: ImageService;
let files: ReturnType<typeof makeImageFiles>;
let socket: { socket: string };
let scratch: string;

const get = (path: string) => http(socket, { path });
const post = (body: unknown) => http(socket, { method: "POST", path: "/v1/images", body });
const remove = (path: string) => http(socket, { method: "DELETE", path });

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "corral-image-api-"));
  files = makeImageFiles(join(scratch, "files"));
  store = await Store.open({ dir: join(scratch, "store") });
  images = new ImageService(store, join(scratch, "state"));
  daemon = await startTestDaemon({ images });
  socket = { socket: daemon.listening.socket };
});

afterAll(async () => {
  await daemon?.[Symbol.asyncDispose]();
  await images?.close();
  store?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("POST /v1/images { import }", () => {
  it("imports a file: 201 with the image and its Location; GET finds it by id and name", async () => {
    const answer = await post({ import: { path: files.qcow2, name: "disk" } });
    expect(answer.status).toBe(201);
    const image = answer.json as { id: string; path: string };
    expect(image).toEqual({
      id: expect.stringMatching(/^[0-9A-Z]{26}$/),
      name: "disk",
      kind: "imported",
      recipe: null,
      format: "qcow2",
      path: expect.stringMatching(/\/images\/[0-9A-Z]{26}\/disk\.qcow2$/),
      sha256: sha256Of(files.qcow2),
      sizeBytes: expect.any(Number),
      createdAt: expect.any(String),
    });
    expect(answer.headers.location).toBe(`/v1/images/${image.id}`);
    expect(await get(`/v1/images/${image.id}`)).toMatchObject({ status: 200, json: image });
    expect(await get("/v1/images/disk")).toMatchObject({ status: 200, json: image });
    const iso = await post({
      import: { path: files.iso, name: "cd", sha256: sha256Of(files.iso) },
    });
    expect(iso).toMatchObject({ status: 201, json: { name: "cd", format: "iso" } });
    expect((await get("/v1/images")).json).toEqual([image, iso.json]);
    expect((await get("/v1/images?kind=built")).json).toEqual([]);
    expect((await get("/v1/images?kind=imported")).json).toEqual([image, iso.json]);
  });

  it("refuses a file that is not what it should be: 400 saying why", async () => {
    const wrong = "f".repeat(64);
    expect(await post({ import: { path: files.raw, name: "x", sha256: wrong } })).toMatchObject({
      status: 400,
      json: {
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `image file ${files.raw} has sha256 ${sha256Of(files.raw)}, not the expected ${wrong}: it is not the file meant, or it was damaged on its way`,
      },
    });
    expect(await post({ import: { path: files.backed, name: "x" } })).toMatchObject({
      status: 400,
      json: { message: expect.stringContaining("with a backing file (disk.qcow2)") },
    });
    expect(await post({ import: { path: files.vmdk, name: "x" } })).toMatchObject({
      status: 400,
      json: { message: expect.stringContaining("is a vmdk image") },
    });
    expect(await post({ import: { path: files.raw, name: "x", format: "qcow2" } })).toMatchObject({
      status: 400,
      json: { message: expect.stringContaining("is a raw image, not qcow2") },
    });
    expect(await post({ import: { path: "/nonexistent/disk.img", name: "x" } })).toMatchObject({
      status: 400,
      json: { message: "image file /nonexistent/disk.img does not exist" },
    });
    expect((await get("/v1/images/x")).status).toBe(404);
  });

  it("validates the body: 400 naming the field", async () => {
    const cases: [unknown, string][] = [
      [{}, "body must NOT have fewer than 1 properties"],
      [
        { import: { path: files.raw, name: "a" }, build: { recipe: "debian-12" } },
        "body must NOT have more than 1 properties",
      ],
      [{ import: { name: "a" } }, "body/import must have required property 'path'"],
      [{ import: { path: "disk.raw", name: "a" } }, 'body/import/path must match pattern "^/"'],
      [{ import: { path: files.raw, name: "Big Disk" } }, "body/import/name must match pattern"],
      [{ import: { path: files.raw, name: "a", sha256: "abc" } }, "body/import/sha256 must match"],
      [
        { import: { path: files.raw, name: "a", format: "vmdk" } },
        "body/import/format must be equal to constant",
      ],
      [
        { import: { path: files.raw, name: "a", size: 1 } },
        "body/import/size is not a known field",
      ],
      [{ build: {} }, "body/build must have required property 'recipe'"],
      [{ pull: { url: "https://example.com" } }, "body/pull is not a known field"],
    ];
    for (const [body, message] of cases) {
      const answer = await post(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json, JSON.stringify(body)).toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining(message),
      });
    }
    expect((await get("/v1/images?kind=pulled")).status).toBe(400);
  });

  it("refuses a name that is taken: 409", async () => {
    expect(await post({ import: { path: files.raw, name: "disk" } })).toMatchObject({
      status: 409,
      json: {
        code: ErrorCodes.CONFLICT,
        message: expect.stringContaining('an image named "disk" already exists'),
      },
    });
  });
});

describe("POST /v1/images { build }", () => {
  it("an unknown recipe is 404 listing the known ones, and starts no job", async () => {
    expect(await post({ build: { recipe: "windows-95" } })).toMatchObject({
      status: 404,
      json: {
        code: ErrorCodes.IMAGE_UNKNOWN,
        message: expect.stringContaining("known recipes: debian-12"),
      },
    });
    expect((await get("/v1/jobs")).json).toEqual([]);
  });

  it("a build named like an image that exists is 409, and starts no job", async () => {
    expect(await post({ build: { recipe: "debian-12", name: "disk" } })).toMatchObject({
      status: 409,
      json: { code: ErrorCodes.CONFLICT },
    });
    expect((await get("/v1/jobs")).json).toEqual([]);
  });
});

describe("GET /v1/jobs", () => {
  it("lists and shows jobs with their progress, result and error; an unknown one is 404", async () => {
    const jobs = new JobService(store);
    const done = jobs.start({ kind: "test-job", subject: "a" }, async ({ reportProgress }) => {
      reportProgress({ stage: "one", stagesDone: [] });
      return { made: "a" };
    });
    const failed = jobs.start({ kind: "test-job", subject: "b" }, async () => {
      throw new Error("it broke");
    });
    await jobs.settled(done.id);
    await jobs.settled(failed.id);
    const listed = (await get("/v1/jobs")).json as { id: string }[];
    expect(listed.map((job) => job.id)).toEqual([done.id, failed.id]);
    expect(await get(`/v1/jobs/${done.id}`)).toMatchObject({
      status: 200,
      json: {
        id: done.id,
        kind: "test-job",
        subject: "a",
        state: "done",
        progress: { stage: "one", stagesDone: [] },
        result: { made: "a" },
        errorCode: null,
        error: null,
        startedAt: expect.any(String),
        finishedAt: expect.any(String),
      },
    });
    expect((await get(`/v1/jobs/${failed.id}`)).json).toMatchObject({
      state: "failed",
      result: null,
      errorCode: ErrorCodes.INTERNAL,
      error: "it broke",
    });
    expect((await get("/v1/jobs?state=failed")).json).toEqual([
      expect.objectContaining({ id: failed.id }),
    ]);
    expect((await get("/v1/jobs?kind=image-build")).json).toEqual([]);
    expect(await get("/v1/jobs/01J0000000000000000000000X")).toMatchObject({
      status: 404,
      json: { code: ErrorCodes.NOT_FOUND, message: 'no job with id "01J0000000000000000000000X"' },
    });
    expect((await get("/v1/jobs?state=lost")).status).toBe(400);
    // Each step is an event for the events stream.
    const events = store.events
      .list()
      .filter((event) => event.data.jobId === done.id)
      .map((event) => [event.type, event.data.state ?? event.data.progress]);
    expect(events).toEqual([
      ["job.state", "queued"],
      ["job.state", "running"],
      ["job.progress", { stage: "one", stagesDone: [] }],
      ["job.state", "done"],
    ]);
  });
});

describe("DELETE /v1/images/{idOrName}", () => {
  it("is 409 while a VM uses the image, then deletes it and its files", async () => {
    const image = (await post({ import: { path: files.raw, name: "used" } })).json as {
      id: string;
      path: string;
    };
    const vm = store.vms.create(newVm("web", { imageId: image.id }));
    expect(await remove("/v1/images/used")).toMatchObject({
      status: 409,
      json: {
        code: ErrorCodes.CONFLICT,
        message: 'image "used" is in use by VM "web": delete them first',
        details: [expect.stringContaining("DELETE /v1/vms/{name}")],
      },
    });
    store.vms.remove(vm.id);
    expect(await remove(`/v1/images/${image.id}`)).toMatchObject({ status: 200, json: image });
    expect(existsSync(dirname(image.path))).toBe(false);
    expect(await remove("/v1/images/used")).toMatchObject({
      status: 404,
      json: { code: ErrorCodes.NOT_FOUND, message: 'no image with id or name "used"' },
    });
  });
});

describe("the OpenAPI document", () => {
  it("declares the image and job routes with their schemas, and is valid", async () => {
    const doc = (await get("/openapi.json")).json as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, unknown> };
    };
    await SwaggerParser.validate(structuredClone(doc) as never);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/v1/images", "/v1/images/{idOrName}", "/v1/jobs", "/v1/jobs/{id}"]),
    );
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(["Image", "Job"]));
    const create = doc.paths["/v1/images"]?.post;
    expect(Object.keys(create?.responses ?? {}).sort()).toEqual(["201", "202", "4XX", "5XX"]);
    expect(create?.responses["202"]).toMatchObject({
      content: { "application/json": { schema: { $ref: "#/components/schemas/Job" } } },
    });
  });
});

describe("an import whose client goes away", () => {
  it("stops, and leaves neither files nor a record", async () => {
    const big = join(scratch, "big.raw");
    writeFileSync(big, "");
    truncateSync(big, 128 * 1024 * 1024);
    const before = images.list();
    const request = httpRequest({
      socketPath: socket.socket,
      method: "POST",
      path: "/v1/images",
      headers: { "content-type": "application/json" },
    });
    request.on("error", () => {});
    request.end(JSON.stringify({ import: { path: big, name: "abandoned" } }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    request.destroy();
    await vi.waitFor(
      () => {
        expect(readdirSync(images.dir).filter((entry) => entry.startsWith("."))).toEqual([]);
        expect(readdirSync(images.dir)).toEqual(before.map((image) => image.id));
      },
      { timeout: 10_000, interval: 50 },
    );
    // Gone for good: the import ended as aborted, not late.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(images.list()).toEqual(before);
    expect(readdirSync(images.dir)).toEqual(before.map((image) => image.id));
  });
});
