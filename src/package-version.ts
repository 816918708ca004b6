// corral's own version, from its package.json (one folder above both src/ and dist/).

import { readFileSync } from "node:fs";

let version: string | undefined;

/** The `version` field of corral's package.json. */
export function packageVersion(): string {
  version ??= (
    JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string;
    }
  ).version;
  return version;
}
