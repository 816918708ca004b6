// The default network, `corral0`, and the subnet of a network made without one: the first /24 of
// 10.213.0.0/16 that collides neither with a route of the host nor with another corral network.
// It is chosen once, when the network is made, and then kept.

import { CorralError, ErrorCodes } from "../errors.ts";
import { cidrsOverlap, formatCidr, parseCidr } from "./cidr.ts";
import { type HostRoute, routeBlock } from "./ipam.ts";

/** The default network's name. */
export const DEFAULT_NETWORK = "corral0";

/** Where subnets are looked for when none is given: its /24s, in order. */
export const DEFAULT_NETWORK_POOL = "10.213.0.0/16";

/**
 * The first /24 of DEFAULT_NETWORK_POOL that overlaps none of `routes` (the host's, default routes
 * excluded) nor `taken` (other networks' subnets). Throws CORRAL_CONFLICT when every one does.
 */
export function chooseDefaultSubnet(
  routes: readonly HostRoute[],
  taken: readonly string[] = [],
): string {
  const pool = parseCidr(DEFAULT_NETWORK_POOL);
  const blocks = [
    ...routes.map(routeBlock).filter((block) => block !== undefined && block.prefix > 0),
    ...taken.map((subnet) => parseCidr(subnet)),
  ];
  for (let i = 0; i < 256; i++) {
    const candidate = { network: pool.network + i * 256, prefix: 24 };
    if (!blocks.some((block) => block && cidrsOverlap(candidate, block))) {
      return formatCidr(candidate);
    }
  }
  throw new CorralError(
    ErrorCodes.CONFLICT,
    `no /24 of ${DEFAULT_NETWORK_POOL} is free for a network: the host's routes or other networks cover all of them; give the network a subnet elsewhere`,
  );
}
