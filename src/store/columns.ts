// Checks and conversions shared by the repositories: names, labels, JSON columns and timestamps.
// Bad input fails with CORRAL_INVALID_ARGUMENT naming the field and the rule.

import { isAbsolute } from "node:path";
import { CorralError, describeValue, ErrorCodes } from "../errors.ts";

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export type JsonObject = { [key: string]: JsonValue };

/** Labels: short keys (no "=", which separates key and value in filters) to string values. */
export type Labels = Record<string, string>;

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
const MAX_LABEL_VALUE = 255;

/** Now, as stored: ISO 8601 in UTC with milliseconds, which sorts as text. */
export function now(): string {
  return new Date().toISOString();
}

/** `value` as a DNS label (RFC 1123: 1–63 lower-case letters, digits, inner hyphens). */
export function requireDnsLabel(value: unknown, what: string): string {
  if (typeof value === "string" && DNS_LABEL.test(value)) return value;
  throw invalid(
    what,
    value,
    "must be a DNS label: 1 to 63 lower-case letters, digits and hyphens, not starting or ending with a hyphen",
  );
}

/** `value` as a name of an image or snapshot: 1–63 lower-case letters, digits, ".", "_", "-". */
export function requireName(value: unknown, what: string): string {
  if (typeof value === "string" && NAME.test(value)) return value;
  throw invalid(
    what,
    value,
    'must be 1 to 63 lower-case letters, digits, ".", "_" and "-", starting with a letter or digit',
  );
}

/** `value` as one of `choices`. */
export function requireOneOf<T extends string>(
  value: unknown,
  choices: readonly T[],
  what: string,
): T {
  if (choices.includes(value as T)) return value as T;
  throw invalid(what, value, `must be one of ${choices.join(", ")}`);
}

/** `value` as a non-negative whole number. */
export function requireCount(value: unknown, what: string): number {
  if (Number.isSafeInteger(value) && (value as number) >= 0) return value as number;
  throw invalid(what, value, "must be a whole number, 0 or more");
}

/** `labels` checked, as their keys and values. */
export function requireLabels(labels: unknown, what = "labels"): Labels {
  if (!isPlainObject(labels)) throw invalid(what, labels, "must be an object of strings");
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key)) {
      throw invalid(
        `${what} key`,
        key,
        'must be 1 to 63 letters, digits, ".", "_", "/" and "-", starting and ending with a letter or digit',
      );
    }
    if (typeof value !== "string" || value.length > MAX_LABEL_VALUE || /\p{Cc}/u.test(value)) {
      throw invalid(
        `${what}.${key}`,
        value,
        `must be a string of at most ${MAX_LABEL_VALUE} characters without control characters`,
      );
    }
  }
  return labels as Labels;
}

/** `value` (a plain object) as JSON text for a column. */
export function objectToJson(value: unknown, what: string): string {
  if (!isPlainObject(value)) throw invalid(what, value, "must be a JSON object");
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${what} cannot be written as JSON: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** A JSON column's text as its value; SQL NULL as null. */
export function fromJson<T = JsonObject>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** CORRAL_INVALID_ARGUMENT: `what` (showing `value`) breaks `rule`. */
export function invalid(what: string, value: unknown, rule: string): CorralError {
  return new CorralError(ErrorCodes.INVALID_ARGUMENT, `${what} ${describeValue(value)} ${rule}`);
}

/** `value` as an absolute path. */
export function requireAbsolutePath(value: unknown, what: string): string {
  if (typeof value === "string" && isAbsolute(value)) return value;
  throw invalid(what, value, "must be an absolute path");
}

/** `?, ?, ?` for `count` values. */
export function placeholders(count: number): string {
  return Array.from({ length: count }, () => "?").join(", ");
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
