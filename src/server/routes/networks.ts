// /v1/networks: list, show, create and delete the manager's bridged networks. Where networks are
// unavailable (no root, no nft or dnsmasq) every route answers 503 saying why.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { CorralError } from "../../errors.ts";
import { CreateNetworkBody, NetworkView } from "../../manager/network-schemas.ts";
import type { NetworkService } from "../../manager/networks.ts";
import { errorResponses } from "../schemas.ts";

export interface NetworkRouteOptions {
  /** The service, or why there is none (CORRAL_NETWORK_UNAVAILABLE). */
  networks: NetworkService | CorralError;
}

const NetworkRef = Type.Ref("Network");
const Name = Type.Object({
  name: Type.String({ minLength: 1, description: "the network's name or id" }),
});

export const networkRoutes: FastifyPluginAsyncTypebox<NetworkRouteOptions> = async (
  app,
  options,
) => {
  app.addSchema(NetworkView);
  const service = (): NetworkService => {
    if (options.networks instanceof Error) throw options.networks;
    return options.networks;
  };

  app.get(
    "/networks",
    {
      schema: {
        summary: "list networks, the oldest first, with their traffic",
        tags: ["networks"],
        response: { 200: Type.Array(NetworkRef), ...errorResponses },
      },
    },
    async () => service().list(),
  );

  app.get(
    "/networks/:name",
    {
      schema: {
        summary: "one network, with its traffic",
        tags: ["networks"],
        params: Name,
        response: { 200: NetworkRef, ...errorResponses },
      },
    },
    async (request) => service().get(request.params.name),
  );

  app.post(
    "/networks",
    {
      schema: {
        summary: "create a network: a bridge, a dnsmasq for DHCP and DNS, and firewall rules",
        description:
          "409 when the name is taken or the subnet overlaps another network or a route of the host.",
        tags: ["networks"],
        body: CreateNetworkBody,
        response: {
          201: Type.Ref("Network", { description: "the new network" }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const network = await service().create(request.body);
      return reply
        .code(201)
        .header("location", `${app.prefix}/networks/${network.name}`)
        .send(network);
    },
  );

  app.delete(
    "/networks/:name",
    {
      schema: {
        summary: "delete a network, its bridge, dnsmasq and rules",
        description: "409 while a VM has a NIC on it.",
        tags: ["networks"],
        params: Name,
        response: {
          200: Type.Ref("Network", { description: "the deleted network" }),
          ...errorResponses,
        },
      },
    },
    async (request) => service().remove(request.params.name),
  );
};
