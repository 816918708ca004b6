// Port forwards from the host to a guest: their checks, and when two of them would take the same
// packets (same port and protocol, and the same host address or either on every address).

import { CorralError, describeValue, ErrorCodes } from "../errors.ts";
import { parseIpv4 } from "./cidr.ts";

export const PROTOCOLS = ["tcp", "udp"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** The host address that means "every address of the host" (and 127.0.0.1). */
export const ANY_ADDRESS = "0.0.0.0";

/** Where a forward listens on the host. */
export interface HostPort {
  hostAddress: string;
  hostPort: number;
  protocol: Protocol;
}

/** `value` as a port number 1–65535; throws CORRAL_INVALID_ARGUMENT naming `what`. */
export function requirePort(value: unknown, what: string): number {
  if (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535) {
    return value as number;
  }
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `${what} ${describeValue(value)} is not a port: use a whole number from 1 to 65535`,
  );
}

/** `value` as a protocol; throws CORRAL_INVALID_ARGUMENT. */
export function requireProtocol(value: unknown): Protocol {
  if (PROTOCOLS.includes(value as Protocol)) return value as Protocol;
  throw new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `protocol ${describeValue(value)} is not one of ${PROTOCOLS.join(", ")}`,
  );
}

/** `value` as a host address in dotted-quad form (ANY_ADDRESS for every address). */
export function requireHostAddress(value: unknown): string {
  parseIpv4(value as string, "host address");
  return value as string;
}

/** Whether two forwards would take the same packets. */
export function hostPortsCollide(a: HostPort, b: HostPort): boolean {
  return (
    a.hostPort === b.hostPort &&
    a.protocol === b.protocol &&
    (a.hostAddress === b.hostAddress ||
      a.hostAddress === ANY_ADDRESS ||
      b.hostAddress === ANY_ADDRESS)
  );
}

/** "tcp 0.0.0.0:8080", for messages. */
export function describeHostPort(port: HostPort): string {
  return `${port.protocol} ${port.hostAddress}:${port.hostPort}`;
}
