// The host's IPv4 routes (`ip -j -4 route`, main table) and addresses: subnets must collide with
// no route, and a port forward listens on one of the addresses.

import type { HostRoute } from "../network/ipam.ts";
import { ipJson, type NetScope } from "./net-scope.ts";

interface IpRoute {
  dst: string;
  dev?: string;
}

interface IpAddress {
  addr_info?: { family: string; local: string }[];
}

/** The routes of the main table. */
export async function listRoutes(scope: NetScope = {}): Promise<HostRoute[]> {
  const routes = await ipJson<IpRoute>(scope, ["-4", "route", "show", "table", "main"]);
  return routes.map((route) => ({ destination: route.dst, device: route.dev }));
}

/** The host's IPv4 addresses, on every link. */
export async function listLocalAddresses(scope: NetScope = {}): Promise<string[]> {
  const links = await ipJson<IpAddress>(scope, ["-4", "address", "show"]);
  return links.flatMap((link) => (link.addr_info ?? []).map((info) => info.local));
}
