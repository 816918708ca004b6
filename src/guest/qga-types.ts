// What the guest agent's informational commands return, with camelCase names (the agent's JSON
// is kebab-case, some of it snake_case), after qga/qapi-schema.json. Optional fields are the
// schema's optional ones: an agent leaves them out where the guest has no value for them.

/** guest-info: the agent's version and its commands. */
export interface QgaInfo {
  /** The agent's version, e.g. `7.2.22`. */
  version: string;
  supportedCommands: QgaCommandInfo[];
}

export interface QgaCommandInfo {
  name: string;
  /** False when the guest's admin disabled it (`--block-rpcs`). */
  enabled: boolean;
  /** False for commands that answer nothing on success (guest-shutdown, guest-suspend-*). */
  successResponse: boolean;
}

/** guest-get-osinfo: POSIX fields from uname(2) and os-release(5); Windows fills them its way. */
export interface QgaOsInfo {
  kernelRelease?: string;
  kernelVersion?: string;
  machine?: string;
  /** os-release ID (`debian`); `mswindows` on Windows. */
  id?: string;
  name?: string;
  prettyName?: string;
  version?: string;
  versionId?: string;
  variant?: string;
  variantId?: string;
}

/** guest-network-get-interfaces: one interface. */
export interface QgaNetworkInterface {
  name: string;
  hardwareAddress?: string;
  ipAddresses?: QgaIpAddress[];
  statistics?: QgaInterfaceStatistics;
}

export interface QgaIpAddress {
  ipAddress: string;
  ipAddressType: "ipv4" | "ipv6";
  prefix: number;
}

/** Counters from the guest's point of view. */
export interface QgaInterfaceStatistics {
  rxBytes: number;
  rxPackets: number;
  rxErrs: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrs: number;
  txDropped: number;
}

/** guest-get-fsinfo: one mounted filesystem (network filesystems are not listed). */
export interface QgaFilesystem {
  /** The device's name, e.g. `vda1`. */
  name: string;
  mountpoint: string;
  type: string;
  usedBytes?: number;
  totalBytes?: number;
  /** The disks it lies on; empty (or absent) where the agent does not know the bus. */
  disk?: QgaDiskAddress[];
}

export interface QgaDiskAddress {
  pciController: { domain: number; bus: number; slot: number; function: number };
  busType: string;
  bus: number;
  target: number;
  unit: number;
  serial?: string;
  dev?: string;
}

/** guest-get-users: one logged-in user. */
export interface QgaUser {
  user: string;
  /** Seconds since the epoch (fractional) of the earliest login. */
  loginTime: number;
  /** Windows only. */
  domain?: string;
}

/** What guest-shutdown does in the guest. */
export type QgaShutdownMode = "powerdown" | "halt" | "reboot";

/** `value` with every object key in camelCase (`ip-address` → `ipAddress`, `a_b` → `aB`). */
export function camelize<T>(value: unknown): T {
  if (Array.isArray(value)) return value.map((item) => camelize(item)) as T;
  if (typeof value !== "object" || value === null) return value as T;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key.replace(/[-_]([a-z0-9])/g, (_, letter: string) => letter.toUpperCase()),
      camelize(item),
    ]),
  ) as T;
}
