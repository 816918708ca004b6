// /v1/vms/{id}/ports: a VM's port forwards — a host port (on every address of the host, or one)
// to a port of the VM's NIC on a bridged network, or of its user-mode NIC (a QEMU hostfwd rule)
// where the daemon has no networks.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { Manager } from "../../manager/manager.ts";
import { CreatePortForwardBody, PortForwardView } from "../../manager/network-schemas.ts";
import { errorResponses } from "../schemas.ts";
import { VmParams } from "./vm-route-schemas.ts";

export interface PortRouteOptions {
  manager: Manager;
}

const PortRef = Type.Ref("PortForward");

const PortParams = Type.Object({
  ...VmParams.properties,
  hostPort: Type.Integer({ minimum: 1, maximum: 65535, description: "the forwarded host port" }),
});

const ProtocolQuery = Type.Object(
  {
    protocol: Type.Optional(
      Type.Union([Type.Literal("tcp"), Type.Literal("udp")], {
        default: "tcp",
        description: "the forward's protocol (default tcp)",
      }),
    ),
  },
  { additionalProperties: false },
);

export const portRoutes: FastifyPluginAsyncTypebox<PortRouteOptions> = async (app, options) => {
  app.addSchema(PortForwardView);
  const ports = options.manager.ports;
  const vmId = (idOrName: string) => options.manager.vms.get(idOrName).id;

  app.get(
    "/vms/:id/ports",
    {
      schema: {
        summary: "list a VM's port forwards, with the connections each has forwarded",
        tags: ["vms", "networks"],
        params: VmParams,
        response: { 200: Type.Array(PortRef), ...errorResponses },
      },
    },
    async (request) => ports.list(vmId(request.params.id)),
  );

  app.post(
    "/vms/:id/ports",
    {
      schema: {
        summary: "forward a host port to a port of the VM",
        description:
          "From other hosts, the host itself and 127.0.0.1 (hostAddress 0.0.0.0, the default), or one address of the host. With networks, to the VM's NIC on a bridged network (nftables DNAT); without (no root, or networks off), to its user-mode NIC (a QEMU hostfwd rule, added at once if the VM runs and at each start). 409 when corral forwards that port already or anything on the host listens on it, or (with networks) the VM has no NIC on a network. The forward goes with the VM.",
        tags: ["vms", "networks"],
        params: VmParams,
        body: CreatePortForwardBody,
        response: {
          201: Type.Ref("PortForward", { description: "the new forward" }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const forward = await ports.add(vmId(request.params.id), request.body);
      return reply
        .code(201)
        .header("location", `${app.prefix}/vms/${forward.vmId}/ports/${forward.hostPort}`)
        .send(forward);
    },
  );

  app.delete(
    "/vms/:id/ports/:hostPort",
    {
      schema: {
        summary: "stop forwarding a host port to the VM",
        tags: ["vms", "networks"],
        params: PortParams,
        querystring: ProtocolQuery,
        response: {
          200: Type.Ref("PortForward", { description: "the removed forward" }),
          ...errorResponses,
        },
      },
    },
    async (request) =>
      ports.remove(
        vmId(request.params.id),
        request.params.hostPort,
        request.query.protocol ?? "tcp",
      ),
  );
};
