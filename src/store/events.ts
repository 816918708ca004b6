// The events table: what happened (a VM changed state, a job progressed), in order, for the
// events stream and for a client that reconnects with the last id it saw. Ids never repeat, even
// after pruning (AUTOINCREMENT). Events name their VM by id without a foreign key: they outlive it.
// The table is capped: each append drops the oldest events beyond the cap.

import { fromJson, invalid, type JsonObject, now, objectToJson, requireCount } from "./columns.ts";
import type { Database } from "./database.ts";

/** How many events are kept by default. */
export const DEFAULT_MAX_EVENTS = 10_000;

/** An event type: dotted lower-case words ("vm.state", "job.progress"). */
const EVENT_TYPE = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/;

export interface StoredEvent {
  /** Increasing: an event with a larger id happened later. */
  id: number;
  time: string;
  vmId: string | null;
  type: string;
  data: JsonObject;
}

export interface NewEvent {
  type: string;
  vmId?: string | null;
  data?: object;
}

export interface EventFilter {
  /** Only events after this id (the last one a client saw). */
  afterId?: number;
  /** Only events of this VM. */
  vmId?: string;
  /** At most this many, the oldest first; default 1000. */
  limit?: number;
}

export interface EventRepositoryOptions {
  /** How many events to keep; default DEFAULT_MAX_EVENTS. */
  maxEvents?: number;
}

interface EventRow {
  id: number;
  time: string;
  vm_id: string | null;
  type: string;
  data: string;
}

export class EventRepository {
  readonly #db: Database;
  readonly maxEvents: number;

  constructor(db: Database, options: EventRepositoryOptions = {}) {
    this.#db = db;
    this.maxEvents = requireCount(options.maxEvents ?? DEFAULT_MAX_EVENTS, "maxEvents");
  }

  /** Records an event, dropping the oldest beyond the cap, and returns it. */
  append(event: NewEvent): StoredEvent {
    if (!EVENT_TYPE.test(event.type)) {
      throw invalid("event type", event.type, 'must be dotted lower-case words, like "vm.state"');
    }
    const data = objectToJson(event.data ?? {}, "event data");
    return this.#db.transaction(() => {
      const row = this.#db
        .prepare("INSERT INTO events (time, vm_id, type, data) VALUES (?, ?, ?, ?) RETURNING *")
        .get(now(), event.vmId ?? null, event.type, data) as unknown as EventRow;
      this.#db.prepare("DELETE FROM events WHERE id <= ?").run(row.id - this.maxEvents);
      return toEvent(row);
    });
  }

  /** The events that pass `filter`, the oldest first. */
  list(filter: EventFilter = {}): StoredEvent[] {
    const afterId = requireCount(filter.afterId ?? 0, "afterId");
    const limit = requireCount(filter.limit ?? 1000, "limit");
    const rows = (filter.vmId === undefined
      ? this.#db
          .prepare("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?")
          .all(afterId, limit)
      : this.#db
          .prepare("SELECT * FROM events WHERE vm_id = ? AND id > ? ORDER BY id LIMIT ?")
          .all(filter.vmId, afterId, limit)) as unknown as EventRow[];
    return rows.map(toEvent);
  }

  /** The id of the latest event, 0 when there is none: a stream starting now follows it. */
  lastId(): number {
    const row = this.#db.prepare("SELECT max(id) AS id FROM events").get() as { id: number | null };
    return row.id ?? 0;
  }

  /**
   * Deletes the events older than `before` (an ISO time) and, when `keep` is given, all but the
   * latest `keep`. Returns how many it deleted.
   */
  prune(options: { before?: string; keep?: number }): number {
    return this.#db.transaction(() => {
      let deleted = 0;
      if (options.before !== undefined) {
        deleted += Number(
          this.#db.prepare("DELETE FROM events WHERE time < ?").run(options.before).changes,
        );
      }
      if (options.keep !== undefined) {
        const keep = requireCount(options.keep, "keep");
        deleted += Number(
          this.#db
            .prepare(
              "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
            )
            .run(keep).changes,
        );
      }
      return deleted;
    });
  }
}

function toEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    time: row.time,
    vmId: row.vm_id,
    type: row.type,
    data: fromJson(row.data) as JsonObject,
  };
}
