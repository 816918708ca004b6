// The jobs table: long work (image builds, imports) that outlasts a request, with its progress
// for the API and the events stream. A job goes queued → running → done or failed, each step a
// compare-and-set; at most one unfinished job per kind and subject (one build of one image).

import { CorralError, ErrorCodes } from "../errors.ts";
import {
  fromJson,
  type JsonObject,
  now,
  objectToJson,
  requireName,
  requireOneOf,
} from "./columns.ts";
import type { Database } from "./database.ts";
import { idFor } from "./ids.ts";
import { uniqueColumns } from "./sqlite-errors.ts";

export const JOB_STATES = ["queued", "running", "done", "failed"] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface Job {
  id: string;
  /** What the job does ("image-build", "image-import"). */
  kind: string;
  /** What it works on (an image's name), if anything. */
  subject: string | null;
  state: JobState;
  /** The job's own account of how far it is. */
  progress: JsonObject | null;
  /** What a done job made (the image's id). */
  result: JsonObject | null;
  /** Why a failed job failed: corral's error code and message. */
  errorCode: string | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
}

export interface NewJob {
  id?: string;
  kind: string;
  subject?: string | null;
  progress?: object | null;
}

interface JobRow {
  id: string;
  kind: string;
  subject: string | null;
  state: JobState;
  progress: string | null;
  result: string | null;
  error_code: string | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
}

export class JobRepository {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Queues a job. Throws CORRAL_CONFLICT when a job of the same kind and subject is queued or
   * running, naming it.
   */
  create(input: NewJob): Job {
    const id = idFor("job", input.id);
    const kind = requireName(input.kind, "job kind");
    const subject = input.subject ?? null;
    const progress = input.progress == null ? null : objectToJson(input.progress, "job progress");
    return this.#db.transaction(() => {
      const time = now();
      try {
        this.#db
          .prepare(
            `INSERT INTO jobs (id, kind, subject, state, progress, created_at, updated_at)
             VALUES (?, ?, ?, 'queued', ?, ?, ?)`,
          )
          .run(id, kind, subject, progress, time, time);
      } catch (error) {
        if (uniqueColumns(error) !== "jobs.kind, jobs.subject") throw error;
        const active = this.#db
          .prepare(
            "SELECT id, state FROM jobs WHERE kind = ? AND subject = ? AND state IN ('queued', 'running')",
          )
          .get(kind, subject) as { id: string; state: JobState };
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `${kind} of "${subject}" is already ${active.state} as job ${active.id}`,
          { cause: error },
        );
      }
      return this.get(id);
    });
  }

  find(id: string): Job | undefined {
    const row = this.#db.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as JobRow | undefined;
    return row && toJob(row);
  }

  /** The job with this id; throws CORRAL_NOT_FOUND when there is none. */
  get(id: string): Job {
    const job = this.find(id);
    if (!job) throw new CorralError(ErrorCodes.NOT_FOUND, `no job with id "${id}"`);
    return job;
  }

  /** The jobs in the order they were added; only those in `state` and of `kind` when given. */
  list(filter: { state?: JobState; kind?: string } = {}): Job[] {
    const conditions: string[] = [];
    const parameters: string[] = [];
    if (filter.state !== undefined) {
      conditions.push("state = ?");
      parameters.push(requireOneOf(filter.state, JOB_STATES, "job state"));
    }
    if (filter.kind !== undefined) {
      conditions.push("kind = ?");
      parameters.push(filter.kind);
    }
    const where = conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : "";
    const rows = this.#db
      .prepare(`SELECT * FROM jobs${where} ORDER BY rowid`)
      .all(...parameters) as unknown as JobRow[];
    return rows.map(toJob);
  }

  /** queued → running; false when the job is not queued. Throws CORRAL_NOT_FOUND when it is gone. */
  start(id: string): boolean {
    return this.#step(id, ["queued"], "state = 'running', started_at = ?1", []);
  }

  /** Records the progress of a running job; false when it is not running. */
  reportProgress(id: string, progress: object): boolean {
    const json = objectToJson(progress, "job progress");
    return this.#step(id, ["running"], "progress = ?2", [json]);
  }

  /** running → done, with what it made; false when the job is not running. */
  finish(id: string, result: object | null = null): boolean {
    const json = result === null ? null : objectToJson(result, "job result");
    return this.#step(id, ["running"], "state = 'done', result = ?2, finished_at = ?1", [json]);
  }

  /** queued or running → failed, with the error; false when the job has already ended. */
  fail(id: string, error: { code?: string; message: string }): boolean {
    return this.#step(
      id,
      ["queued", "running"],
      "state = 'failed', error_code = ?2, error = ?3, finished_at = ?1",
      [error.code ?? null, error.message],
    );
  }

  /**
   * Fails every queued or running job with `message`, for a manager starting after one that
   * stopped while they ran. Returns them, failed.
   */
  failUnfinished(message: string): Job[] {
    return this.#db.transaction(() => {
      const time = now();
      const rows = this.#db
        .prepare(
          `UPDATE jobs SET state = 'failed', error_code = ?, error = ?, finished_at = ?, updated_at = ?
           WHERE state IN ('queued', 'running') RETURNING rowid AS position, *`,
        )
        .all(ErrorCodes.ABORTED, message, time, time) as unknown as (JobRow & {
        position: number;
      })[];
      return rows.sort((a, b) => a.position - b.position).map(toJob);
    });
  }

  /** Deletes the jobs that ended before `finishedBefore` (an ISO time); returns how many. */
  prune(options: { finishedBefore: string }): number {
    return this.#db.transaction(() =>
      Number(
        this.#db.prepare("DELETE FROM jobs WHERE finished_at < ?").run(options.finishedBefore)
          .changes,
      ),
    );
  }

  /** Applies `set` (with ?1 the time, ?2… `values`) if the job is in one of `from`. */
  #step(id: string, from: JobState[], set: string, values: (string | null)[]): boolean {
    return this.#db.transaction(() => {
      const { changes } = this.#db
        .prepare(
          `UPDATE jobs SET ${set}, updated_at = ?1
           WHERE id = ?${values.length + 2} AND state IN (${from.map((state) => `'${state}'`).join(", ")})`,
        )
        .run(now(), ...values, id);
      if (Number(changes) > 0) return true;
      this.get(id);
      return false;
    });
  }
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    kind: row.kind,
    subject: row.subject,
    state: row.state,
    progress: fromJson(row.progress),
    result: fromJson(row.result),
    errorCode: row.error_code,
    error: row.error,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
  };
}
