// Parsers for CLI option values; they throw commander's InvalidArgumentError with the fix.

import { InvalidArgumentError } from "commander";
import type { Accelerator } from "../host/accelerator.ts";

/** A positive number of seconds, any size; `Infinity` means no limit. */
export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (Number.isNaN(seconds) || seconds <= 0) {
    throw new InvalidArgumentError(
      `expected a positive number of seconds (Infinity for no limit), got "${value}"`,
    );
  }
  return seconds;
}

export function parseAccel(value: string): Accelerator {
  if (value !== "kvm" && value !== "tcg")
    throw new InvalidArgumentError(`expected kvm or tcg, got "${value}"`);
  return value;
}

export function parseVlan(value: string): number {
  const vlan = Number(value);
  if (!/^\d+$/.test(value) || vlan > 255) {
    throw new InvalidArgumentError(`expected a VLAN number from 0 to 255, got "${value}"`);
  }
  return vlan;
}

/** Values come one per argument from the command line, or space-separated from the environment. */
export function collectWords<T>(
  parse: (word: string) => T,
): (value: string, previous?: T[]) => T[] {
  return (value, previous = []) => [...previous, ...value.split(/\s+/).filter(Boolean).map(parse)];
}

/** A whole number ≥ 1 (vCPUs, MiB, GiB, milliseconds). */
export function parsePositiveInteger(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError(`expected a whole number of at least 1, got "${value}"`);
  }
  return Number(value);
}

/** A TCP or UDP port, 1–65535. */
export function parsePort(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new InvalidArgumentError(`expected a port from 1 to 65535, got "${value}"`);
  }
  return Number(value);
}

/** A whole number ≥ 0 (milliseconds, where 0 means at once). */
export function parseNonNegativeInteger(value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new InvalidArgumentError(`expected a whole number of at least 0, got "${value}"`);
  }
  return Number(value);
}

/** `key=value` labels, one per use of the option, collected into a record. */
export function collectLabel(
  value: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const at = value.indexOf("=");
  if (at < 1) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}
