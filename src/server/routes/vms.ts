// /v1/vms: create (also as the /linux and /windows shorthands), list, show, change and delete VMs;
// lifecycle actions; waiting for a state; stats. Calls wait for their operation to end unless
// `?wait=false`, which answers 202 at once with the VM in its transitional state.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { Manager } from "../../manager/manager.ts";
import {
  CreateVmBody,
  PatchVmBody,
  ResizeVmBody,
  StopVmBody,
  VmStateSchema,
  VmStatsView,
  VmView,
} from "../../manager/vm-schemas.ts";
import { errorResponses } from "../schemas.ts";
import { emptyBodyAsObject, parseLabelFilter, VmParams, WaitQuery } from "./vm-route-schemas.ts";

export interface VmRouteOptions {
  manager: Manager;
}

const MAX_WAIT_MS = 300_000;
/** Distinct list queries whose answers are kept (all are dropped when this many are). */
const LIST_CACHE_ENTRIES = 64;

const ListQuery = Type.Object(
  {
    state: Type.Optional(VmStateSchema),
    label: Type.Optional(
      Type.Array(Type.String({ pattern: "^[^=]+=.*$" }), {
        description: "key=value; repeat it for several labels (all must match)",
      }),
    ),
  },
  { additionalProperties: false },
);

const WaitForQuery = Type.Object(
  {
    state: VmStateSchema,
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_WAIT_MS,
        default: 60_000,
        description: "how long to wait, in ms (default 60000, at most 300000)",
      }),
    ),
  },
  { additionalProperties: false },
);

const ShorthandBody = Type.Omit(CreateVmBody, ["os"], { additionalProperties: false });

/** The answers of a call that may end at once (done) or go on (202). */
const doneOrAccepted = (done: 200 | 201) =>
  ({
    [done]: VmView,
    202: { ...VmView, description: "accepted (?wait=false): the VM in its transitional state" },
    ...errorResponses,
  }) as const;

export const vmRoutes: FastifyPluginAsyncTypebox<VmRouteOptions> = async (app, { manager }) => {
  const listCache = new Map<string, { revision: number; body: string }>();
  const { vms } = manager;

  app.post(
    "/vms",
    {
      schema: {
        summary: "create a VM from a template and/or an explicit spec, or clone a snapshot",
        description:
          "Starts it unless `start: false`. Without `template`, the OS's `<os>-default` template is used when there is one. With `fromSnapshot` it is a clone: its own disk layer on the snapshot's, its own name, hostname and machine id.",
        tags: ["vms"],
        querystring: WaitQuery,
        body: CreateVmBody,
        response: doneOrAccepted(201),
      },
    },
    async (request, reply) => {
      const { vm, isDone } = await vms.create(request.body, { wait: request.query.wait });
      return reply.code(isDone ? 201 : 202).send(vm);
    },
  );

  for (const os of ["linux", "windows"] as const) {
    app.post(
      `/vms/${os}`,
      {
        schema: {
          summary: `create a ${os === "linux" ? "Linux" : "Windows"} VM (template ${os}-default unless named)`,
          tags: ["vms"],
          querystring: WaitQuery,
          body: ShorthandBody,
          response: doneOrAccepted(201),
        },
      },
      async (request, reply) => {
        const { vm, isDone } = await vms.create(request.body, { wait: request.query.wait, os });
        return reply.code(isDone ? 201 : 202).send(vm);
      },
    );
  }

  app.get(
    "/vms",
    {
      schema: {
        summary: "list VMs",
        tags: ["vms"],
        querystring: ListQuery,
        response: { 200: Type.Array(VmView), ...errorResponses },
      },
    },
    async (request, reply) => {
      // The answer is kept as JSON text until a VM changes: a poller of the list (a dashboard,
      // `watch corral vm ls`) costs a map lookup, not a query and a serialisation per request.
      const key = request.url.slice(request.url.indexOf("?") + 1 || request.url.length);
      let cached = listCache.get(key);
      if (cached?.revision !== vms.revision) {
        const revision = vms.revision;
        const list = vms.list({
          state: request.query.state,
          labels: parseLabelFilter(request.query.label),
        });
        if (listCache.size >= LIST_CACHE_ENTRIES) listCache.clear();
        cached = { revision, body: JSON.stringify(list) };
        listCache.set(key, cached);
      }
      return reply.type("application/json; charset=utf-8").send(cached.body);
    },
  );

  app.get(
    "/vms/:id",
    {
      schema: {
        summary: "show a VM, with its NICs on bridged networks",
        tags: ["vms"],
        params: VmParams,
        response: { 200: VmView, ...errorResponses },
      },
    },
    async (request) => vms.get(request.params.id),
  );

  app.patch(
    "/vms/:id",
    {
      schema: {
        summary: "change a VM's labels, or its vCPUs and memory while it is not running",
        tags: ["vms"],
        params: VmParams,
        body: PatchVmBody,
        response: { 200: VmView, ...errorResponses },
      },
    },
    async (request) => vms.update(request.params.id, request.body),
  );

  app.delete(
    "/vms/:id",
    {
      schema: {
        summary: "stop a VM and remove it (its snapshots stay)",
        tags: ["vms"],
        params: VmParams,
        querystring: WaitQuery,
        response: {
          204: Type.Null({ description: "deleted" }),
          202: { ...VmView, description: "accepted (?wait=false): the VM being deleted" },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { vm, isDone } = await vms.delete(request.params.id, { wait: request.query.wait });
      return isDone ? reply.code(204).send(null) : reply.code(202).send(vm);
    },
  );

  const actions = [
    ["start", "start a VM at rest; waits until its guest's shell answers"],
    ["reboot", "reboot a running VM's guest"],
    ["pause", "pause a running VM's CPUs (its clock stops)"],
    ["resume", "resume a paused VM"],
  ] as const;
  for (const [action, summary] of actions) {
    app.post(
      `/vms/:id/${action}`,
      {
        schema: {
          summary,
          tags: ["vms"],
          params: VmParams,
          querystring: WaitQuery,
          response: doneOrAccepted(200),
        },
      },
      async (request, reply) => {
        const { vm, isDone } = await vms[action](request.params.id, { wait: request.query.wait });
        return reply.code(isDone ? 200 : 202).send(vm);
      },
    );
  }

  app.post(
    "/vms/:id/stop",
    {
      preValidation: emptyBodyAsObject,
      schema: {
        summary: "power a VM off: ACPI with a grace period, then forced; at once with force",
        tags: ["vms"],
        params: VmParams,
        querystring: WaitQuery,
        body: Type.Optional(StopVmBody),
        response: doneOrAccepted(200),
      },
    },
    async (request, reply) => {
      const { vm, isDone } = await vms.stop(request.params.id, {
        ...request.body,
        wait: request.query.wait,
      });
      return reply.code(isDone ? 200 : 202).send(vm);
    },
  );

  app.post(
    "/vms/:id/resize",
    {
      schema: {
        summary: "change a VM's vCPUs, memory or disk",
        description:
          "A running VM grows at once: vCPUs and memory hot-plugged (memory in whole steps of 128 MiB), its disk grown; the answer comes once the guest sees it. It only grows, up to its template's max (409 with the limit otherwise). A VM at rest gets its new vCPUs and memory at its next start, and a new disk size only before its disk exists (never started).",
        tags: ["vms"],
        params: VmParams,
        body: ResizeVmBody,
        response: { 200: VmView, ...errorResponses },
      },
    },
    async (request) => vms.resize(request.params.id, request.body),
  );

  app.get(
    "/vms/:id/wait",
    {
      schema: {
        summary: "wait until a VM is in a state (long poll)",
        description:
          "Answers with the VM once it is in `state`; CORRAL_TIMEOUT (504) after timeoutMs.",
        tags: ["vms"],
        params: VmParams,
        querystring: WaitForQuery,
        response: { 200: VmView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const gone = new AbortController();
      reply.raw.once("close", () => gone.abort());
      return vms.waitFor(request.params.id, request.query.state, {
        timeoutMs: request.query.timeoutMs ?? 60_000,
        signal: gone.signal,
      });
    },
  );

  app.get(
    "/vms/:id/stats",
    {
      schema: {
        summary: "a VM's VMM CPU time and memory, its disks' I/O, its uptime, its NICs' traffic",
        tags: ["vms"],
        params: VmParams,
        response: { 200: VmStatsView, ...errorResponses },
      },
    },
    async (request) => vms.stats(request.params.id),
  );
};
