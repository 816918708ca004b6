// Row ids: ULIDs (https://github.com/ulid/spec) — 26 characters of Crockford base32, the first ten
// the creation time in milliseconds, so ids sort by age. They are upper case, and names of VMs,
// images and templates are lower case, so an id is never mistaken for a name.

import { randomBytes } from "node:crypto";
import { invalid } from "./columns.ts";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

/** A new ULID for a row created at `nowMs`. */
export function newId(nowMs = Date.now()): string {
  let time = "";
  for (let rest = nowMs, i = 0; i < TIME_CHARS; i++, rest = Math.floor(rest / 32)) {
    time = ALPHABET[rest % 32] + time;
  }
  let random = "";
  // 256 is a multiple of 32, so the low five bits of a random byte are uniform.
  for (const byte of randomBytes(RANDOM_CHARS)) random += ALPHABET[byte & 31];
  return time + random;
}

/** The id a caller chose for a new row of `what` (checked to be a ULID), or a new one. */
export function idFor(what: string, chosen: string | undefined): string {
  if (chosen === undefined) return newId();
  if (/^[0-9A-HJKMNP-TV-Z]{26}$/.test(chosen)) return chosen;
  throw invalid(`${what} id`, chosen, "must be a ULID made by newId()");
}
