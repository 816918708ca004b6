// GET /v1/events: the manager's events as server-sent events (`id:` the event's id, `event:` its
// type, `data:` the event as JSON), from now on, or resumed after the id in `Last-Event-ID` or
// `?after=`. Comments keep the connection alive; the stream ends when the daemon stops.

import type { ServerResponse } from "node:http";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { Manager } from "../../manager/manager.ts";
import { errorResponses } from "../schemas.ts";

export interface EventRouteOptions {
  manager: Manager;
  /** How often a comment line keeps an idle stream alive; default 15000 ms. */
  heartbeatMs?: number;
}

const BACKLOG_PAGE = 1000;
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

const EventsQuery = Type.Object(
  {
    after: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: "send the stored events after this id first (Last-Event-ID does the same)",
      }),
    ),
    vm: Type.Optional(Type.String({ minLength: 1, description: "only this VM's (id or name)" })),
  },
  { additionalProperties: false },
);

const EventData = Type.Object(
  {
    id: Type.Integer(),
    time: Type.String(),
    vmId: Type.Union([Type.String(), Type.Null()]),
    type: Type.String({ description: "vm.state, vm.deleted, snapshot.created, job.progress…" }),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { description: "the JSON in each event's data: line" },
);

export const eventRoutes: FastifyPluginAsyncTypebox<EventRouteOptions> = async (app, options) => {
  const { manager } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const open = new Set<ServerResponse>();
  app.addHook("preClose", async () => {
    for (const response of open) response.end();
  });

  app.get(
    "/events",
    {
      schema: {
        summary: "stream the manager's events (server-sent events)",
        description:
          "Each event: `id: <id>`, `event: <type>`, `data: <the event as JSON>`. Reconnect with `Last-Event-ID` (or `?after=`) to get what was missed. Lines starting with `:` are heartbeats.",
        tags: ["events"],
        querystring: EventsQuery,
        headers: Type.Object({
          "last-event-id": Type.Optional(Type.String({ pattern: "^\\d+$" })),
        }),
        response: {
          200: {
            description: "an endless text/event-stream",
            content: { "text/event-stream": { schema: EventData } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const header = request.headers["last-event-id"];
      const after = request.query.after ?? (header === undefined ? undefined : Number(header));
      const vmId = request.query.vm === undefined ? undefined : vmIdOf(manager, request.query.vm);
      if (manager.events.isClosed) {
        throw new CorralError(ErrorCodes.DAEMON_UNREACHABLE, "corral serve is stopping");
      }
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        connection: "keep-alive",
      });
      response.write(": corral events\n\n");
      let lastSent = after ?? manager.events.lastId();
      const send = (event: { id: number; type: string; vmId: string | null }) => {
        if (event.id <= lastSent || (vmId !== undefined && event.vmId !== vmId)) return;
        lastSent = event.id;
        response.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      };
      const heartbeat = setInterval(() => response.write(": heartbeat\n\n"), heartbeatMs);
      let hasEnded = false;
      const end = () => {
        if (hasEnded) return;
        hasEnded = true;
        clearInterval(heartbeat);
        unsubscribe();
        open.delete(response);
        response.end();
      };
      // Subscribed and backlog read in one synchronous step: no event falls in between.
      const unsubscribe = manager.events.subscribe(send, end);
      open.add(response);
      response.once("close", end);
      for (let page = BACKLOG_PAGE; page === BACKLOG_PAGE && after !== undefined; ) {
        const events = manager.events.list({
          afterId: lastSent,
          limit: BACKLOG_PAGE,
          ...(vmId !== undefined ? { vmId } : {}),
        });
        for (const event of events) send(event);
        page = events.length;
      }
    },
  );
};

/** The id of VM `idOrName`; an id of a VM deleted since is taken as it is. */
function vmIdOf(manager: Manager, idOrName: string): string {
  try {
    return manager.vms.get(idOrName).id;
  } catch (error) {
    if (ULID.test(idOrName)) return idOrName;
    throw error;
  }
}
