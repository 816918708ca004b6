// MAC addresses of the manager's NICs: 52:54:00 (QEMU's locally administered prefix) and three
// random bytes, drawn again while taken. The fourth byte is never 0x12, which `corral test`'s
// VLAN MACs (52:54:00:12:<vlan>:<node>) use, so the two schemes never meet on one host.

import { randomBytes } from "node:crypto";
import { CorralError, describeValue, ErrorCodes } from "../errors.ts";

const PREFIX = "52:54:00";
const VLAN_BYTE = 0x12;
const MAX_DRAWS = 1000;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** `text` as a lower-case MAC address; throws CORRAL_INVALID_ARGUMENT when it is not one. */
export function normalizeMac(text: string): string {
  const mac = typeof text === "string" ? text.toLowerCase() : "";
  if (!MAC.test(mac)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `MAC address ${describeValue(text)} is not six hex bytes joined by ":", like 52:54:00:ab:cd:ef`,
    );
  }
  const first = Number.parseInt(mac.slice(0, 2), 16);
  if (first & 1) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `MAC address ${text} is a multicast address: a NIC needs a unicast one (an even first byte)`,
    );
  }
  return mac;
}

/**
 * A new MAC `52:54:00:xx:xx:xx` not in `taken` (lower case). `random` gives the three bytes
 * (for tests); throws CORRAL_CONFLICT when no free one turns up in 1000 draws.
 */
export function allocateMac(
  taken: ReadonlySet<string>,
  random: () => Buffer = () => randomBytes(3),
): string {
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const bytes = random();
    if (bytes[0] === VLAN_BYTE) continue;
    const mac = `${PREFIX}:${[...bytes.subarray(0, 3)].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
    if (!taken.has(mac)) return mac;
  }
  throw new CorralError(
    ErrorCodes.CONFLICT,
    `no free MAC address turned up in ${MAX_DRAWS} draws (${taken.size} are taken)`,
  );
}
