// /v1/vms/{id}/guest/: the guest as a system: its channel's capabilities, a ping, system info,
// processes (and killing one), health, a graceful shutdown, and its services.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { errorResponses } from "../schemas.ts";
import { type GuestResolver, requestDeadline } from "./guest-context.ts";
import { signalName } from "./guest-exec-request.ts";
import {
  GuestCapabilitiesView,
  HealthView,
  KillQuery,
  PingReply,
  ProcessView,
  ServiceParams,
  ServiceView,
  ShutdownBody,
  SystemInfoView,
} from "./guest-schemas.ts";
import { emptyBodyAsObject, VmParams } from "./vm-route-schemas.ts";

export interface GuestSystemRouteOptions {
  guests: GuestResolver;
}

export const guestSystemRoutes: FastifyPluginAsyncTypebox<GuestSystemRouteOptions> = async (
  app,
  { guests },
) => {
  const read = <T>(
    path: string,
    summary: string,
    response: object,
    call: (
      guest: Awaited<ReturnType<GuestResolver>>,
      deadline: ReturnType<typeof requestDeadline>,
    ) => Promise<T>,
  ) =>
    app.get(
      `/vms/:id/guest/${path}`,
      {
        schema: {
          summary,
          tags: ["guest"],
          params: VmParams,
          response: { 200: response, ...errorResponses },
        },
      },
      async (request, reply) =>
        call(await guests(request.params.id), requestDeadline(request, reply, path)),
    );

  read(
    "capabilities",
    "what the VM's guest channel can do (streaming, stdin, pty, signals)",
    GuestCapabilitiesView,
    async (guest) => guest.capabilities,
  );
  read("ping", "one round trip to the guest's channel", PingReply, async (guest, deadline) => {
    const started = performance.now();
    await guest.ping(deadline);
    return { roundTripMs: performance.now() - started, channel: guest.capabilities.channel };
  });
  read(
    "system-info",
    "the guest's OS, kernel, hostname, CPUs, memory, filesystems, interfaces, uptime and users",
    SystemInfoView,
    (guest, deadline) => guest.systemInfo(deadline),
  );
  read(
    "processes",
    "the guest's processes: pid, user, command, CPU and RSS",
    Type.Array(ProcessView),
    (guest, deadline) => guest.processes(deadline),
  );
  read(
    "health",
    "the agent's round trip, the system's state (systemd's is-system-running), load, free memory and disk",
    HealthView,
    (guest, deadline) => guest.health(deadline),
  );
  read(
    "services",
    "the guest's services: systemd units, or Windows services",
    Type.Array(ServiceView),
    (guest, deadline) => guest.services(deadline),
  );

  app.delete(
    "/vms/:id/guest/processes/:pid",
    {
      schema: {
        summary: "send a signal to a guest process (default TERM)",
        tags: ["guest"],
        params: Type.Object({ ...VmParams.properties, pid: Type.Integer({ minimum: 1 }) }),
        querystring: KillQuery,
        response: { 204: Type.Null({ description: "sent" }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const guest = await guests(request.params.id);
      await guest.kill(
        request.params.pid,
        signalName(request.query.signal ?? "TERM"),
        requestDeadline(request, reply, `kill ${request.params.pid}`),
      );
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/vms/:id/guest/shutdown",
    {
      preValidation: emptyBodyAsObject,
      schema: {
        summary: "ask the guest to power off (or reboot) through its agent or shell",
        description:
          "Answers once the guest took the request; the VM's state follows (exited, or running again after a reboot) as GET /v1/events shows.",
        tags: ["guest"],
        params: VmParams,
        body: Type.Optional(ShutdownBody),
        response: {
          202: Type.Object({ mode: Type.String() }, { description: "the guest took the request" }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const mode = request.body?.mode ?? "powerdown";
      const guest = await guests(request.params.id);
      await guest.shutdown(mode, requestDeadline(request, reply, `shutdown (${mode})`));
      return reply.code(202).send({ mode });
    },
  );

  app.post(
    "/vms/:id/guest/services/:name/:action",
    {
      schema: {
        summary: "start, stop or restart a guest service; answers with its state after",
        tags: ["guest"],
        params: ServiceParams,
        response: { 200: ServiceView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { id, name, action } = request.params;
      const guest = await guests(id);
      return guest.serviceAction(
        name,
        action,
        requestDeadline(request, reply, `${action} service ${name}`),
      );
    },
  );
};
