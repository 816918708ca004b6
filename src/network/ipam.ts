// Addressing of one bridged network: its gateway and the range corral hands out (as static DHCP
// leases), the lowest free address in that range, and whether a subnet collides with the host's
// routes or another network.

import { CorralError, ErrorCodes } from "../errors.ts";
import {
  type Cidr,
  cidrsOverlap,
  formatCidr,
  formatIpv4,
  lastAddress,
  parseCidr,
  parseIpv4,
} from "./cidr.ts";

/** The widest and narrowest subnets a network may have (a /30 still holds a gateway and a VM). */
export const MIN_PREFIX = 16;
export const MAX_PREFIX = 30;

/** A network's addresses, all as text. */
export interface SubnetPlan {
  /** CIDR block, host bits zero: "10.213.0.0/24". */
  subnet: string;
  /** The host's address on the bridge, the guests' router and DNS server. */
  gateway: string;
  /** First and last address corral allocates to NICs (the gateway is skipped if inside). */
  dhcpStart: string;
  dhcpEnd: string;
}

export interface PlanSubnetOptions {
  /** Default: the subnet's first host address. */
  gateway?: string | undefined;
  /** Default: the first host address after the gateway. */
  dhcpStart?: string | undefined;
  /** Default: the last host address (before the broadcast address). */
  dhcpEnd?: string | undefined;
}

/**
 * The addresses of a network on `subnet`, the defaults filled in. Throws CORRAL_INVALID_ARGUMENT
 * for a subnet that is not a /16 to /30 block, or a gateway or range outside its host addresses.
 */
export function planSubnet(subnet: string, options: PlanSubnetOptions = {}): SubnetPlan {
  const cidr = parseCidr(subnet);
  if (cidr.prefix < MIN_PREFIX || cidr.prefix > MAX_PREFIX) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `subnet ${subnet} is a /${cidr.prefix}: a network's subnet must be a /${MIN_PREFIX} to a /${MAX_PREFIX}`,
    );
  }
  const firstHost = cidr.network + 1;
  const lastHost = lastAddress(cidr) - 1;
  const hostAddress = (text: string | undefined, what: string, fallback: number): number => {
    if (text === undefined) return fallback;
    const value = parseIpv4(text, what);
    if (value < firstHost || value > lastHost) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${what} ${text} is not a host address of ${subnet}: use one from ${formatIpv4(firstHost)} to ${formatIpv4(lastHost)}`,
      );
    }
    return value;
  };
  const gateway = hostAddress(options.gateway, "gateway", firstHost);
  const defaultStart = gateway === firstHost ? firstHost + 1 : firstHost;
  const dhcpStart = hostAddress(options.dhcpStart, "DHCP range start", defaultStart);
  const dhcpEnd = hostAddress(options.dhcpEnd, "DHCP range end", lastHost);
  const size = dhcpEnd - dhcpStart + 1 - (gateway >= dhcpStart && gateway <= dhcpEnd ? 1 : 0);
  if (size < 1) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `DHCP range ${formatIpv4(dhcpStart)}–${formatIpv4(dhcpEnd)} of ${subnet} holds no address for a VM (the gateway is ${formatIpv4(gateway)})`,
    );
  }
  return {
    subnet: formatCidr(cidr),
    gateway: formatIpv4(gateway),
    dhcpStart: formatIpv4(dhcpStart),
    dhcpEnd: formatIpv4(dhcpEnd),
  };
}

/**
 * The lowest address of the plan's range that is neither the gateway nor in `taken`. Throws
 * CORRAL_CONFLICT naming `network` when the range is full.
 */
export function allocateAddress(
  plan: SubnetPlan,
  taken: Iterable<string>,
  network: string,
): string {
  const used = new Set<number>();
  for (const address of taken) used.add(parseIpv4(address));
  used.add(parseIpv4(plan.gateway));
  const end = parseIpv4(plan.dhcpEnd);
  for (let address = parseIpv4(plan.dhcpStart); address <= end; address++) {
    if (!used.has(address)) return formatIpv4(address);
  }
  throw new CorralError(
    ErrorCodes.CONFLICT,
    `network "${network}" has no free address: its range ${plan.dhcpStart}–${plan.dhcpEnd} is taken; remove a VM from it or create a network with a larger subnet`,
  );
}

/** A route of the host's routing table, as `ip -j route` shows it. */
export interface HostRoute {
  /** CIDR block, a bare address (a /32), or "default". */
  destination: string;
  /** The interface it goes out of, when it has one. */
  device?: string | undefined;
}

/** The route's block; undefined for a default route (every subnet is "inside" it) or a non-IPv4 one. */
export function routeBlock(route: HostRoute): Cidr | undefined {
  if (route.destination === "default") return undefined;
  const text = route.destination.includes("/") ? route.destination : `${route.destination}/32`;
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

/** The first of `routes` whose block overlaps `subnet` (default routes do not count). */
export function overlappingRoute(
  subnet: string,
  routes: readonly HostRoute[],
): HostRoute | undefined {
  const cidr = parseCidr(subnet);
  return routes.find((route) => {
    const block = routeBlock(route);
    return block !== undefined && block.prefix > 0 && cidrsOverlap(cidr, block);
  });
}
