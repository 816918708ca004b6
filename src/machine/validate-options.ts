// Checks a machine's options before anything starts, so that a bad spec fails at once naming the
// field, its value and what is allowed, instead of reaching QEMU or being silently dropped.

import { CorralError, describeValue, ErrorCodes } from "../errors.ts";
import { isMachineName, MACHINE_NAME_RULE, MAX_VLAN } from "../network/addressing.ts";
import type { MachineOptions } from "./machine-options.ts";
import { PROFILE_OPTION_RULES, validateProfile } from "./validate-profile.ts";

/** Says what a field allows when `value` breaks the rule; undefined when it is fine. */
export type FieldRule = (value: unknown) => string | undefined;

export const MIN_MEMORY_MIB = 64;
export const MAX_CPUS = 255;
/** 512 GiB: QEMU's memory slots and TCG's 40 physical address bits leave room for it. */
export const MAX_MEMORY_MIB = 524_288;
const MAX_NODE = 254;

export const wholeNumber =
  (min: number, max: number, unit = ""): FieldRule =>
  (value) =>
    Number.isInteger(value) && (value as number) >= min && (value as number) <= max
      ? undefined
      : Number.isFinite(max)
        ? `a whole number${unit} from ${min} to ${max}`
        : `a whole number${unit}, at least ${min}`;

const nonEmptyString: FieldRule = (value) =>
  typeof value === "string" && value !== "" ? undefined : "a non-empty string";

const boolean: FieldRule = (value) => (typeof value === "boolean" ? undefined : "true or false");

const isVlan = (value: unknown) =>
  Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_VLAN;

const isLinkName = (value: unknown) =>
  typeof value === "string" && /^[A-Za-z0-9_.-]{1,15}$/.test(value);

/** Unicast: the first byte's lowest bit is clear. */
const isUnicastMac = (value: unknown) =>
  typeof value === "string" &&
  /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(value) &&
  (Number.parseInt(value.slice(0, 2), 16) & 1) === 0;

/** The rules of every MachineOptions field. */
export const MACHINE_OPTION_RULES: { readonly [K in keyof MachineOptions]-?: FieldRule } = {
  name: (value) => (isMachineName(value) ? undefined : `a host name: ${MACHINE_NAME_RULE}`),
  image: (value) =>
    value === null || nonEmptyString(value) === undefined
      ? undefined
      : "a non-empty string, or null for no corral image",
  startScript: nonEmptyString,
  accel: (value) => (value === "kvm" || value === "tcg" ? undefined : '"kvm" or "tcg"'),
  stateDir: nonEmptyString,
  keepState: boolean,
  rootDisk: nonEmptyString,
  allowReboot: boolean,
  guestAgent: boolean,
  transferDisk: boolean,
  sharedDir: nonEmptyString,
  cpus: wholeNumber(1, MAX_CPUS),
  memoryMiB: wholeNumber(MIN_MEMORY_MIB, Number.POSITIVE_INFINITY, " of MiB"),
  maxCpus: wholeNumber(1, MAX_CPUS),
  maxMemoryMiB: wholeNumber(MIN_MEMORY_MIB, MAX_MEMORY_MIB, " of MiB"),
  vlans: (value) =>
    Array.isArray(value) &&
    value.every(
      (nic) =>
        typeof nic === "object" &&
        nic !== null &&
        isVlan(nic.vlan) &&
        nonEmptyString(nic.switchSocket) === undefined,
    )
      ? undefined
      : `a list of { vlan: 0–${MAX_VLAN}, switchSocket: a vde_switch folder }`,
  taps: (value) =>
    Array.isArray(value) &&
    value.every(
      (nic) =>
        typeof nic === "object" &&
        nic !== null &&
        Object.keys(nic).every((key) => key === "ifname" || key === "mac") &&
        isLinkName(nic.ifname) &&
        isUnicastMac(nic.mac),
    )
      ? undefined
      : "a list of { ifname: a link name (1–15 of letters, digits, '_', '.', '-'), mac: a unicast MAC, lower-case xx:xx:xx:xx:xx:xx }",
  node: wholeNumber(1, MAX_NODE),
  snapshot: nonEmptyString,
  backend: nonEmptyString,
  ownership: (value) =>
    value === "owned" || value === "persistent" ? undefined : '"owned" or "persistent"',
  kernelParams: (value) =>
    Array.isArray(value) && value.every((item) => typeof item === "string")
      ? undefined
      : "a list of strings",
  env: (value) =>
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((item) => typeof item === "string")
      ? undefined
      : "an object whose values are strings",
  ...PROFILE_OPTION_RULES,
};

/** A list of VLAN numbers: the `vlans` of a test's machine spec. */
export const VLAN_NUMBERS_RULE: FieldRule = (value) =>
  Array.isArray(value) && value.every(isVlan)
    ? undefined
    : `a list of VLAN numbers, whole numbers from 0 to ${MAX_VLAN}`;

/**
 * Throws CORRAL_INVALID_ARGUMENT at the first field of `fields` that is unknown to `rules` or
 * breaks its rule; `subject` starts the message (`machine "a"`). Undefined fields are skipped.
 */
export function validateFields(
  subject: string,
  fields: unknown,
  rules: { readonly [field: string]: FieldRule },
): void {
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${subject}: the options are ${describeValue(fields)}; expected an object`,
    );
  }
  for (const [field, value] of Object.entries(fields)) {
    const rule = rules[field];
    if (!rule) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${subject}: unknown field ${JSON.stringify(field)}; fields: ${Object.keys(rules).join(", ")}`,
      );
    }
    if (value === undefined) continue;
    const allowed = rule(value);
    if (allowed) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${subject}: ${field} is ${describeValue(value)}; expected ${allowed}`,
      );
    }
  }
  const { image, startScript, ownership, stateDir } = fields as Record<string, unknown>;
  if (ownership === "persistent" && stateDir === undefined) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${subject}: a persistent machine needs a stateDir: the folder to find it again by`,
    );
  }
  if (image !== undefined && startScript !== undefined) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${subject}: give an image or a startScript, not both`,
    );
  }
}

/** Throws CORRAL_INVALID_ARGUMENT naming the field of `options` that is wrong, if any. */
export function validateMachineOptions(options: MachineOptions): void {
  const name = (options as { name?: unknown } | null)?.name;
  const subject = isMachineName(name) ? `machine ${JSON.stringify(name)}` : "new Machine";
  validateFields(subject, options, MACHINE_OPTION_RULES);
  for (const [max, size] of [
    ["maxCpus", "cpus"],
    ["maxMemoryMiB", "memoryMiB"],
  ] as const) {
    const limit = options[max];
    const value = options[size];
    if (limit !== undefined && value !== undefined && limit < value) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${subject}: ${max} is ${limit}, less than ${size} (${value}); it is the most the machine may grow to`,
      );
    }
  }
  validateProfile(subject, options);
}
