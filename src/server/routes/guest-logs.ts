// /v1/vms/{id}/guest/logs (and the seed's Windows name for it, …/guest/event-logs): the guest's
// journal or event logs, filtered; with `follow`, server-sent events (`event: log`) as the guest
// is polled for entries newer than the last one sent.

import type { ServerResponse } from "node:http";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { GuestOps, LogEntry, LogQuery } from "../../manager/guest/guest-ops.ts";
import { errorResponses } from "../schemas.ts";
import { GUEST_CALL_TIMEOUT_MS, type GuestResolver, requestDeadline } from "./guest-context.ts";
import { LogEntryView, LogsQuery } from "./guest-schemas.ts";
import { VmParams } from "./vm-route-schemas.ts";

export interface GuestLogRouteOptions {
  guests: GuestResolver;
  /** How often a followed log asks the guest for new entries; default 1000 ms. */
  pollMs?: number;
  /** How often an idle followed log gets a heartbeat comment; default 15000 ms. */
  heartbeatMs?: number;
}

const DEFAULT_LIMIT = 1000;
const PRIORITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
const AGE_UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

type Query = Type.Static<typeof LogsQuery>;

export const guestLogRoutes: FastifyPluginAsyncTypebox<GuestLogRouteOptions> = async (
  app,
  options,
) => {
  const { guests } = options;
  const pollMs = options.pollMs ?? 1000;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const open = new Set<ServerResponse>();
  app.addHook("preClose", async () => {
    for (const response of open) response.end();
  });

  const serve = async (
    request: FastifyRequest<{ Params: { id: string }; Querystring: Query }>,
    reply: FastifyReply,
  ) => {
    const query = logQuery(request.query);
    const guest = await guests(request.params.id);
    if (!request.query.follow) return guest.logs(query, requestDeadline(request, reply, "logs"));
    // The first page is asked before the stream opens, so that a refusal is an error answer.
    const first = await guest.logs(query, requestDeadline(request, reply, "logs"));
    reply.hijack();
    follow(reply.raw, guest, query, first, `VM "${request.params.id}": logs`);
    return reply;
  };

  const follow = (
    response: ServerResponse,
    guest: GuestOps,
    query: LogQuery,
    first: LogEntry[],
    what: string,
  ) => {
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    response.write(": corral guest logs\n\n");
    const seen = new NewEntries(query.since);
    const send = (entries: LogEntry[]) => {
      for (const entry of seen.filter(entries)) {
        response.write(`event: log\ndata: ${JSON.stringify(entry)}\n\n`);
      }
    };
    send(first);
    const gone = new AbortController();
    const heartbeat = setInterval(() => response.write(": heartbeat\n\n"), heartbeatMs);
    const end = () => {
      if (gone.signal.aborted) return;
      gone.abort();
      clearInterval(heartbeat);
      open.delete(response);
      response.end();
    };
    open.add(response);
    response.once("close", end);
    void (async () => {
      while (!gone.signal.aborted) {
        await new Promise((resolve) => setTimeout(resolve, pollMs));
        if (gone.signal.aborted) return;
        const deadline = new Deadline(what, { signal: gone.signal }, GUEST_CALL_TIMEOUT_MS);
        try {
          const since = seen.newest ?? query.since;
          send(
            await guest.logs({ ...query, ...(since && { since }), limit: DEFAULT_LIMIT }, deadline),
          );
        } catch (error) {
          if (gone.signal.aborted) return;
          const message = (error as Error).message.split("\n")[0];
          response.write(
            `event: error\ndata: ${JSON.stringify({ code: (error as CorralError).code ?? ErrorCodes.INTERNAL, message })}\n\n`,
          );
          end();
        }
      }
    })();
  };

  for (const path of ["logs", "event-logs"]) {
    app.get(
      `/vms/:id/guest/${path}`,
      {
        schema: {
          summary:
            path === "logs"
              ? "the guest's logs: the journal on Linux, the event logs on Windows"
              : "the guest's logs (the seed's name for Windows event logs; the same as …/guest/logs)",
          description:
            "Oldest first, the latest `limit` (default 1000). With `follow=true`: a text/event-stream of `event: log` events, first the entries the query matches, then new ones as they come (the guest is polled every second); an `event: error` ends it if the guest stops answering.",
          tags: ["guest"],
          params: VmParams,
          querystring: LogsQuery,
          response: {
            200: {
              description: "the entries, or with follow a text/event-stream of them",
              content: {
                "application/json": { schema: Type.Array(LogEntryView) },
                "text/event-stream": { schema: LogEntryView },
              },
            },
            ...errorResponses,
          },
        },
      },
      serve,
    );
  }
};

/** The GuestOps query that the API's query string asks for. */
function logQuery(query: Query): LogQuery {
  return {
    ...(query.since !== undefined && { since: parseSince(query.since) }),
    ...(query.unit !== undefined && { unit: query.unit }),
    ...(query.identifier !== undefined && { identifier: query.identifier }),
    ...(query.priority !== undefined && { priority: parsePriority(query.priority) }),
    limit: query.limit ?? DEFAULT_LIMIT,
  };
}

/** `30s`, `10m`, `2h`, `1d` ago, or an ISO 8601 time; CORRAL_INVALID_ARGUMENT if it is no time. */
export function parseSince(since: string, now = Date.now()): Date {
  const age = /^(\d+)([smhd])$/.exec(since);
  const date = age
    ? new Date(now - Number(age[1]) * (AGE_UNITS_MS[age[2] as string] as number))
    : new Date(since);
  if (Number.isNaN(date.getTime())) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `querystring/since ${since} is not a time`);
  }
  return date;
}

function parsePriority(priority: string): number {
  const named = PRIORITIES.indexOf(priority);
  return named >= 0 ? named : Number(priority);
}

/**
 * Entries not sent yet, for a log that is polled with `since` = the newest entry's time: the
 * guest answers that entry (and its equals in time) again, so those are dropped.
 */
class NewEntries {
  newest: Date | undefined;
  #newestTime: string | undefined;
  #atNewest = new Set<string>();

  constructor(since: Date | undefined) {
    this.newest = since;
  }

  filter(entries: LogEntry[]): LogEntry[] {
    const fresh: LogEntry[] = [];
    for (const entry of entries) {
      const key = `${entry.source}\0${entry.priority}\0${entry.message}`;
      if (entry.time === this.#newestTime && this.#atNewest.has(key)) continue;
      if (this.newest !== undefined && Date.parse(entry.time) < this.newest.getTime()) continue;
      if (entry.time !== this.#newestTime) {
        this.#newestTime = entry.time;
        this.#atNewest = new Set();
        this.newest = new Date(entry.time);
      }
      this.#atNewest.add(key);
      fresh.push(entry);
    }
    return fresh;
  }
}
