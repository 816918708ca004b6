// Long work that outlasts a request (image builds), run as a job: a row in store.jobs that goes
// queued → running → done or failed, with its progress, and a `job.state` or `job.progress` event
// in store.events at each step, for the API and the events stream.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { Job, JobState } from "../store/jobs.ts";
import type { Store } from "../store/store.ts";

export type { Job, JobState } from "../store/jobs.ts";

export interface JobContext {
  /** The job as it was queued. */
  job: Job;
  /** Fires when the service closes: the work should stop and undo what it began. */
  signal: AbortSignal;
  /** Records the job's progress (a JSON object) and announces it as a `job.progress` event. */
  reportProgress(progress: object): void;
}

/** What a job's work does: returns what it made (the job's result) or throws why it failed. */
export type JobWork = (context: JobContext) => Promise<object | null>;

export class JobService implements AsyncDisposable {
  readonly #store: Store;
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** The jobs in the order they were queued; only those in `state` and of `kind` when given. */
  list(filter: { state?: JobState; kind?: string } = {}): Job[] {
    return this.#store.jobs.list(filter);
  }

  /** The job with this id; throws CORRAL_NOT_FOUND when there is none. */
  get(id: string): Job {
    return this.#store.jobs.get(id);
  }

  /**
   * Queues a job of `kind` on `subject` and runs `work` in the background; returns the job as
   * it is once the work has begun. Throws CORRAL_CONFLICT, naming the other job, while a job of
   * the same kind and subject is unfinished.
   */
  start(input: { kind: string; subject: string | null }, work: JobWork): Job {
    const job = this.#store.transaction(() => {
      const queued = this.#store.jobs.create(input);
      this.#announce(queued, "job.state", { state: "queued" });
      return queued;
    });
    const controller = new AbortController();
    const done = this.#run(job, work, controller.signal)
      // Only a store closed under a running job gets here: there is nothing to record it in.
      .catch(() => undefined)
      .finally(() => this.#running.delete(job.id));
    this.#running.set(job.id, { controller, done });
    return this.get(job.id);
  }

  /** Resolves when the job has ended (done or failed) and returns it. */
  async settled(id: string): Promise<Job> {
    await this.#running.get(id)?.done;
    return this.get(id);
  }

  /** Aborts the running jobs and waits until each has failed and cleaned up. */
  async close(): Promise<void> {
    const running = [...this.#running.values()];
    for (const { controller } of running) controller.abort();
    await Promise.all(running.map(({ done }) => done));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #run(job: Job, work: JobWork, signal: AbortSignal): Promise<void> {
    const store = this.#store;
    try {
      store.transaction(() => {
        store.jobs.start(job.id);
        this.#announce(job, "job.state", { state: "running" });
      });
      const result = await work({
        job,
        signal,
        reportProgress: (progress) =>
          store.transaction(() => {
            if (store.jobs.reportProgress(job.id, progress)) {
              this.#announce(job, "job.progress", { progress });
            }
          }),
      });
      store.transaction(() => {
        store.jobs.finish(job.id, result);
        this.#announce(job, "job.state", { state: "done", result });
      });
    } catch (error) {
      const failure = describeFailure(error, signal);
      store.transaction(() => {
        if (store.jobs.fail(job.id, failure)) {
          this.#announce(job, "job.state", { state: "failed", ...failure });
        }
      });
    }
  }

  #announce(job: Job, type: string, data: object): void {
    this.#store.events.append({
      type,
      data: { jobId: job.id, kind: job.kind, subject: job.subject, ...data },
    });
  }
}

function describeFailure(error: unknown, signal: AbortSignal): { code: string; message: string } {
  if (signal.aborted) {
    return { code: ErrorCodes.ABORTED, message: "corral serve stopped while the job ran" };
  }
  if (error instanceof CorralError) return { code: error.code, message: error.message };
  return { code: ErrorCodes.INTERNAL, message: String((error as Error)?.message ?? error) };
}
