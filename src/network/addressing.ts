// The NixOS test network conventions corral guests follow: VLAN numbers, MACs and host names.

import { CorralError, describeValue, ErrorCodes } from "../errors.ts";

export const MAX_VLAN = 255;

/** The MAC of node `node` on VLAN `vlan`: 52:54:00:12:<vlan>:<node> in hex. */
export function vlanMac(vlan: number, node: number): string {
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return `52:54:00:12:${hex(vlan)}:${hex(node)}`;
}

/** The address corral guests take as node `node` on VLAN `vlan`: 192.168.<vlan>.<node>. */
export function vlanAddress(vlan: number, node: number): string {
  return `192.168.${vlan}.${node}`;
}

export function checkVlan(vlan: number): void {
  if (!Number.isInteger(vlan) || vlan < 0 || vlan > MAX_VLAN) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `VLAN ${vlan} is out of range: VLANs are whole numbers from 0 to ${MAX_VLAN}`,
    );
  }
}

/** What a machine name may be: it becomes the guest's host name, one DNS label (RFC 1123). */
export const MACHINE_NAME_RULE =
  'letters, digits and "-", starting with a letter, not ending with "-", at most 63 characters';

export function isMachineName(name: unknown): boolean {
  return typeof name === "string" && /^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(name);
}

/** Machine names become host names: see MACHINE_NAME_RULE. */
export function checkMachineName(name: string): void {
  if (!isMachineName(name)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `machine name ${describeValue(name)} is not a valid host name: use ${MACHINE_NAME_RULE}`,
    );
  }
}
