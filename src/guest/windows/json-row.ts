// Typed reads of one JSON object a guest script printed: each read names the field that is
// missing or of the wrong type, so a change on the Windows side fails loudly, not as undefined.

import { outputError } from "./powershell-output.ts";

/** Reads fields of one JSON object from a guest script's output. */
export interface JsonRow {
  string(key: string): string;
  /** A string, or null for null, a missing field or "" (PowerShell prints absent text all three ways). */
  optionalString(key: string): string | null;
  number(key: string): number;
  optionalNumber(key: string): number | null;
  boolean(key: string): boolean;
  /** The raw value, for fields with their own parser. */
  value(key: string): unknown;
}

/** A JsonRow over `value`; throws CORRAL_GUEST_OUTPUT_INVALID when it is not a JSON object. */
export function jsonRow(value: unknown, what: string): JsonRow {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw outputError(what, "expected a JSON object", JSON.stringify(value) ?? String(value));
  }
  const row = value as Record<string, unknown>;
  const wrong = (key: string, expected: string) =>
    outputError(
      what,
      `field ${key} should be ${expected}, not ${JSON.stringify(row[key]) ?? "missing"}`,
      JSON.stringify(row),
    );
  return {
    string(key) {
      const field = row[key];
      if (typeof field !== "string") throw wrong(key, "a string");
      return field;
    },
    optionalString(key) {
      const field = row[key];
      if (field === undefined || field === null || field === "") return null;
      if (typeof field !== "string") throw wrong(key, "a string or null");
      return field;
    },
    number(key) {
      const field = row[key];
      if (typeof field !== "number" || !Number.isFinite(field)) throw wrong(key, "a number");
      return field;
    },
    optionalNumber(key) {
      const field = row[key];
      if (field === undefined || field === null) return null;
      if (typeof field !== "number" || !Number.isFinite(field))
        throw wrong(key, "a number or null");
      return field;
    },
    boolean(key) {
      const field = row[key];
      if (typeof field !== "boolean") throw wrong(key, "true or false");
      return field;
    },
    value(key) {
      return row[key];
    },
  };
}

/**
 * The name of an enum value that PowerShell printed either as its name (what the scripts ask
 * for) or as its number (ConvertTo-Json's default), given the names from value `first` up.
 */
export function enumName<Name extends string>(
  value: unknown,
  names: readonly Name[],
  first: number,
  what: string,
): Name {
  if (typeof value === "string" && (names as readonly string[]).includes(value)) {
    return value as Name;
  }
  if (typeof value === "number" && names[value - first] !== undefined) {
    return names[value - first] as Name;
  }
  throw outputError(
    what,
    `${JSON.stringify(value)} is none of ${names.join(", ")}`,
    JSON.stringify(value) ?? "",
  );
}
