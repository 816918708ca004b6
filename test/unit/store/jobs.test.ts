import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { temporaryStore } from "../../helpers/store.ts";

describe("JobRepository", () => {
  it("takes a job from queued through running to done, each step once", async () => {
    const store = await temporaryStore();
    const job = store.jobs.create({ kind: "image-build", subject: "debian" });
    expect(job).toMatchObject({
      kind: "image-build",
      subject: "debian",
      state: "queued",
      progress: null,
      startedAt: null,
      finishedAt: null,
    });
    expect(store.jobs.reportProgress(job.id, { step: "debootstrap" })).toBe(false);
    expect(store.jobs.start(job.id)).toBe(true);
    expect(store.jobs.start(job.id)).toBe(false);
    expect(store.jobs.reportProgress(job.id, { step: "kernel", done: 2, total: 5 })).toBe(true);
    expect(store.jobs.get(job.id)).toMatchObject({
      state: "running",
      progress: { step: "kernel", done: 2, total: 5 },
      startedAt: expect.any(String),
    });
    expect(store.jobs.finish(job.id, { imageId: "01ABC" })).toBe(true);
    expect(store.jobs.fail(job.id, { message: "too late" })).toBe(false);
    expect(store.jobs.get(job.id)).toMatchObject({
      state: "done",
      result: { imageId: "01ABC" },
      error: null,
      finishedAt: expect.any(String),
    });
    expect(() => store.jobs.start("01NOSUCHJOB")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: 'no job with id "01NOSUCHJOB"',
      }),
    );
  });

  it("records why a job failed", async () => {
    const store = await temporaryStore();
    const job = store.jobs.create({ kind: "image-import", subject: "ubuntu" });
    expect(
      store.jobs.fail(job.id, {
        code: ErrorCodes.HOST_COMMAND_FAILED,
        message: "qemu-img info failed",
      }),
    ).toBe(true);
    expect(store.jobs.get(job.id)).toMatchObject({
      state: "failed",
      errorCode: "CORRAL_HOST_COMMAND_FAILED",
      error: "qemu-img info failed",
    });
  });

  it("allows one unfinished job per kind and subject", async () => {
    const store = await temporaryStore();
    const first = store.jobs.create({ kind: "image-build", subject: "debian" });
    expect(() => store.jobs.create({ kind: "image-build", subject: "debian" })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: `image-build of "debian" is already queued as job ${first.id}`,
      }),
    );
    store.jobs.create({ kind: "image-build", subject: "alpine" });
    store.jobs.create({ kind: "image-import", subject: "debian" });
    store.jobs.create({ kind: "cleanup" });
    store.jobs.create({ kind: "cleanup" });
    store.jobs.start(first.id);
    store.jobs.finish(first.id);
    expect(store.jobs.create({ kind: "image-build", subject: "debian" }).state).toBe("queued");
    expect(store.jobs.list({ kind: "cleanup" })).toHaveLength(2);
    expect(store.jobs.list({ state: "done" }).map((job) => job.id)).toEqual([first.id]);
  });

  it("fails the jobs a stopped manager left unfinished, and prunes ended ones", async () => {
    const store = await temporaryStore();
    const done = store.jobs.create({ kind: "image-build", subject: "a" });
    store.jobs.start(done.id);
    store.jobs.finish(done.id);
    const running = store.jobs.create({ kind: "image-build", subject: "b" });
    store.jobs.start(running.id);
    const queued = store.jobs.create({ kind: "image-build", subject: "c" });
    const failed = store.jobs.failUnfinished("corral serve stopped while the job ran");
    expect(failed.map((job) => [job.id, job.state, job.errorCode, job.error])).toEqual([
      [running.id, "failed", ErrorCodes.ABORTED, "corral serve stopped while the job ran"],
      [queued.id, "failed", ErrorCodes.ABORTED, "corral serve stopped while the job ran"],
    ]);
    expect(store.jobs.prune({ finishedBefore: "2000-01-01T00:00:00.000Z" })).toBe(0);
    expect(store.jobs.prune({ finishedBefore: "9999-01-01T00:00:00.000Z" })).toBe(3);
    store.jobs.create({ kind: "image-build", subject: "d" });
    expect(store.jobs.prune({ finishedBefore: "9999-01-01T00:00:00.000Z" })).toBe(0);
  });
});
