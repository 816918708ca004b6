// Whether this host can give the manager bridged networks: root's CAP_NET_ADMIN, and the ip, nft
// and dnsmasq programs. Without them networks are unavailable and VMs use QEMU's user-mode
// networking instead.

import { readFileSync } from "node:fs";
import { CorralError, ErrorCodes } from "../errors.ts";
import { aptInstallCommand, checkRequirements, NETWORK_REQUIREMENTS } from "./requirements.ts";

const CAP_NET_ADMIN = 12n;

export interface NetworkingSupport {
  isAvailable: boolean;
  /** Why not, and how to fix it; or what makes it available. */
  reason: string;
}

/** Whether bridged networks can be made here, and why (not). */
export function checkNetworking(): NetworkingSupport {
  if (!hasNetAdmin()) {
    return {
      isAvailable: false,
      reason:
        "corral is not running as root (it lacks CAP_NET_ADMIN), which bridges, TAP devices and nftables need",
    };
  }
  const missing = checkRequirements(NETWORK_REQUIREMENTS).filter((status) => !status.isPresent);
  if (missing.length > 0) {
    return {
      isAvailable: false,
      reason: `${missing.map((status) => status.id).join(", ")} missing: ${aptInstallCommand(missing)}`,
    };
  }
  return { isAvailable: true, reason: "root with CAP_NET_ADMIN, and ip, nft and dnsmasq present" };
}

/** Throws CORRAL_NETWORK_UNAVAILABLE saying why, unless bridged networks can be made here. */
export function requireNetworking(operation: string): void {
  const support = checkNetworking();
  if (support.isAvailable) return;
  throw new CorralError(
    ErrorCodes.NETWORK_UNAVAILABLE,
    `${operation}: networks are unavailable on this host: ${support.reason}`,
    {
      details: [
        "VMs still get QEMU's user-mode NIC, restricted: nothing goes out through it, and only port forwards (QEMU hostfwd rules) come in; corral reaches them through their guest channel.",
        "Run corral serve as root, with `corral doctor --install` done, for bridged networks.",
      ],
    },
  );
}

/** Whether this process holds CAP_NET_ADMIN (the effective set of /proc/self/status). */
function hasNetAdmin(): boolean {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return effective !== undefined && ((BigInt(`0x${effective}`) >> CAP_NET_ADMIN) & 1n) === 1n;
  } catch {
    return false;
  }
}
