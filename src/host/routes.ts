// The host's IPv4 routes (`ip -j -4 route`, main table), for choosing subnets that collide with
// none of them.

import type { HostRoute } from "../network/ipam.ts";
import { ipJson, type NetScope } from "./net-scope.ts";

interface IpRoute {
  dst: string;
  dev?: string;
}

/** The routes of the main table. */
export async function listRoutes(scope: NetScope = {}): Promise<HostRoute[]> {
  const routes = await ipJson<IpRoute>(scope, ["-4", "route", "show", "table", "main"]);
  return routes.map((route) => ({ destination: route.dst, device: route.dev }));
}
