// Snapshots: taken of a VM (POST /v1/vms/{id}/snapshots), listed, shown, deleted, and used to
// roll their VM back (restore). Clones are made with POST /v1/vms { fromSnapshot }.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { Manager } from "../../manager/manager.ts";
import { CreateSnapshotBody, SnapshotView, VmView } from "../../manager/vm-schemas.ts";
import { errorResponses } from "../schemas.ts";
import { emptyBodyAsObject, SnapshotParams, VmParams, WaitQuery } from "./vm-route-schemas.ts";

export interface SnapshotRouteOptions {
  manager: Manager;
}

const ListQuery = Type.Object(
  { vm: Type.Optional(Type.String({ minLength: 1, description: "only this VM's (id or name)" })) },
  { additionalProperties: false },
);

export const snapshotRoutes: FastifyPluginAsyncTypebox<SnapshotRouteOptions> = async (
  app,
  { manager },
) => {
  const { vms } = manager;

  app.post(
    "/vms/:id/snapshots",
    {
      preValidation: emptyBodyAsObject,
      schema: {
        summary: "save a running or paused VM as a snapshot; it goes on as it was",
        tags: ["snapshots"],
        params: VmParams,
        body: Type.Optional(CreateSnapshotBody),
        response: { 201: SnapshotView, ...errorResponses },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await vms.snapshot(request.params.id, request.body ?? {})),
  );

  app.get(
    "/snapshots",
    {
      schema: {
        summary: "list snapshots",
        tags: ["snapshots"],
        querystring: ListQuery,
        response: { 200: Type.Array(SnapshotView), ...errorResponses },
      },
    },
    async (request) => vms.listSnapshots({ vm: request.query.vm }),
  );

  app.get(
    "/snapshots/:id",
    {
      schema: {
        summary: "show a snapshot",
        tags: ["snapshots"],
        params: SnapshotParams,
        response: { 200: SnapshotView, ...errorResponses },
      },
    },
    async (request) => vms.getSnapshot(request.params.id),
  );

  app.delete(
    "/snapshots/:id",
    {
      schema: {
        summary: "delete a snapshot (409 while a VM's disk is a layer on it)",
        tags: ["snapshots"],
        params: SnapshotParams,
        response: { 204: Type.Null({ description: "deleted" }), ...errorResponses },
      },
    },
    async (request, reply) => {
      await vms.deleteSnapshot(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/snapshots/:id/restore",
    {
      schema: {
        summary: "roll the snapshot's VM back to it: it runs from the snapshot's state",
        tags: ["snapshots"],
        params: SnapshotParams,
        querystring: WaitQuery,
        response: {
          200: VmView,
          202: { ...VmView, description: "accepted (?wait=false): the VM being restored" },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { vm, isDone } = await vms.restore(request.params.id, { wait: request.query.wait });
      return reply.code(isDone ? 200 : 202).send(vm);
    },
  );
};
