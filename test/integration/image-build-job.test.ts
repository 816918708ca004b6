// POST /v1/images { build } over real HTTP: a job that builds a recipe (a cache hit of the default
// image, which the global setup built), visible with its progress, its events and its result; one
// build per recipe at a time; a build that fails or is aborted leaves nothing behind.

import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { findImage } from "../../src/images/image-cache.ts";
import { http, startTestDaemon } from "../helpers/http.ts";
import { makeImageFiles, sha256Of, temporaryImageService } from "../helpers/image-files.ts";

interface JobBody {
  id: string;
  state: string;
  progress: { stage: string; status: string; stagesDone: string[] } | null;
  result: { imageId: string; name: string; wasCached: boolean } | null;
  errorCode: string | null;
  error: string | null;
}

describe("an image build job over the API", () => {
  it("is 202 with the job, one build per recipe at a time, and ends with the image", async () => {
    const { images, store } = await temporaryImageService();
    await using daemon = await startTestDaemon({ images });
    const socket = { socket: daemon.listening.socket };
    const answer = await http(socket, {
      method: "POST",
      path: "/v1/images",
      body: { build: { recipe: "debian-12", name: "base" } },
    });
    expect(answer.status).toBe(202);
    const job = answer.json as JobBody;
    expect(job).toMatchObject({ kind: "image-build", subject: "debian-12", state: "running" });
    expect(answer.headers.location).toBe(`/v1/jobs/${job.id}`);

    const again = await http(socket, {
      method: "POST",
      path: "/v1/images",
      body: { build: { recipe: "debian-12", name: "other" } },
    });
    expect(again).toMatchObject({
      status: 409,
      json: {
        code: ErrorCodes.CONFLICT,
        message: `image-build of "debian-12" is already running as job ${job.id}`,
      },
    });
    const running = (await http(socket, { path: `/v1/jobs/${job.id}` })).json as JobBody;
    expect(running.state).toBe("running");

    await images.jobs.settled(job.id);
    const done = (await http(socket, { path: `/v1/jobs/${job.id}` })).json as JobBody;
    expect(done).toMatchObject({
      state: "done",
      progress: { stage: "copy", status: "done", stagesDone: ["verify", "copy"] },
      result: { imageId: expect.any(String), name: "base", wasCached: true },
      errorCode: null,
    });

    const image = (await http(socket, { path: `/v1/images/${done.result?.imageId}` })).json as {
      path: string;
      sha256: string;
    };
    const cached = await findImage("debian-12");
    expect(image).toMatchObject({
      name: "base",
      kind: "built",
      recipe: "debian-12",
      format: "qcow2",
    });
    expect(image.path).toBe(join(dirname(image.path), "root.qcow2"));
    expect(image.sha256).toBe(cached.manifest.artifacts["root.qcow2"]?.sha256);
    expect(sha256Of(image.path)).toBe(image.sha256);
    expect(readdirSync(dirname(image.path)).sort()).toEqual(
      ["initrd", "manifest.json", "root.qcow2", "run-debian-12-vm", "vmlinuz"].sort(),
    );

    const events = store.events.list().filter((event) => event.data.jobId === job.id);
    expect(events.filter((event) => event.type === "job.state").map((e) => e.data.state)).toEqual([
      "queued",
      "running",
      "done",
    ]);
    const stages = events
      .filter((event) => event.type === "job.progress")
      .map((event) => {
        const progress = event.data.progress as { stage: string; status: string };
        return `${progress.stage} ${progress.status}`;
      });
    expect(stages).toEqual(["verify start", "verify done", "copy start", "copy done"]);
  });
});

describe("a build job that cannot finish", () => {
  it("fails when its name is taken while it builds, leaving no files", async () => {
    const { images, stateDir } = await temporaryImageService();
    const job = images.build({ recipe: "debian-12", name: "taken" });
    const files = makeImageFiles();
    await images.import({ name: "taken", path: files.raw });
    const failed = await images.jobs.settled(job.id);
    expect(failed).toMatchObject({
      state: "failed",
      errorCode: ErrorCodes.CONFLICT,
      error: 'an image named "taken" already exists',
    });
    expect(images.list().map((image) => image.kind)).toEqual(["imported"]);
    expect(readdirSync(join(stateDir, "images"))).toEqual([images.get("taken").id]);
  });

  it("fails as aborted when the service closes, leaving no files", async () => {
    const { images, stateDir } = await temporaryImageService();
    const job = images.build({ recipe: "debian-12" });
    await images.close();
    expect(images.jobs.get(job.id)).toMatchObject({
      state: "failed",
      errorCode: ErrorCodes.ABORTED,
      error: "corral serve stopped while the job ran",
    });
    expect(images.list()).toEqual([]);
    const root = join(stateDir, "images");
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  });
});
