// IPv4 addresses and CIDR blocks as numbers: parsing, printing and overlap. corral's
// bridged networks are IPv4 only (see docs/networking.md).

import { CorralError, describeValue, ErrorCodes } from "../errors.ts";

/** An IPv4 block: its first address (host bits zero) and its prefix length. */
export interface Cidr {
  /** The network address as an unsigned 32-bit number. */
  network: number;
  /** Prefix length, 0–32. */
  prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `text` as an unsigned 32-bit number, or undefined when it is not a dotted-quad IPv4 address. */
export function tryParseIpv4(text: string): number | undefined {
  const match = IPV4.exec(text);
  if (!match) return undefined;
  let value = 0;
  for (const part of match.slice(1)) {
    // "010" is octal to some parsers and decimal to others: refuse it rather than guess.
    if (part.length > 1 && part.startsWith("0")) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** `text` as an IPv4 address number; throws CORRAL_INVALID_ARGUMENT naming `what`. */
export function parseIpv4(text: string, what = "address"): number {
  const value = typeof text === "string" ? tryParseIpv4(text) : undefined;
  if (value === undefined) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${what} ${describeValue(text)} is not an IPv4 address: write four numbers 0–255 joined by dots, like 10.213.0.1`,
    );
  }
  return value;
}

/** The dotted-quad form of an address number. */
export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

/**
 * `text` ("10.213.0.0/24") as a block. Throws CORRAL_INVALID_ARGUMENT naming `what` when it is not
 * a CIDR block, or when host bits are set ("10.213.0.1/24": the block meant is ambiguous).
 */
export function parseCidr(text: string, what = "subnet"): Cidr {
  const [address, prefixText, ...rest] = typeof text === "string" ? text.split("/") : [];
  const prefix = Number(prefixText);
  const network = address === undefined ? undefined : tryParseIpv4(address);
  if (
    network === undefined ||
    rest.length > 0 ||
    !/^\d{1,2}$/.test(prefixText ?? "") ||
    prefix > 32
  ) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${what} ${describeValue(text)} is not an IPv4 CIDR block: write an address and a prefix length, like 10.213.0.0/24`,
    );
  }
  if ((network & hostMask(prefix)) >>> 0 !== 0) {
    const fixed = formatCidr({ network: (network & netmask(prefix)) >>> 0, prefix });
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${what} ${text} has host bits set: did you mean ${fixed}?`,
    );
  }
  return { network, prefix };
}

/** "10.213.0.0/24". */
export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

/** The netmask of a prefix length as a number (24 → 0xffffff00). */
export function netmask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** The dotted-quad netmask of a prefix length (24 → "255.255.255.0"). */
export function formatNetmask(prefix: number): string {
  return formatIpv4(netmask(prefix));
}

function hostMask(prefix: number): number {
  return ~netmask(prefix) >>> 0;
}

/** The last address of the block (its broadcast address). */
export function lastAddress(cidr: Cidr): number {
  return (cidr.network | hostMask(cidr.prefix)) >>> 0;
}

/** Whether `address` is in `cidr`. */
export function cidrContains(cidr: Cidr, address: number): boolean {
  return (address & netmask(cidr.prefix)) >>> 0 === cidr.network;
}

/** Whether the two blocks share an address (one contains the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.network ^ b.network) & netmask(prefix)) >>> 0 === 0;
}
