// undici, loaded when first used: its module graph takes ~100 ms to load, and most corral
// commands (`corral test` among them) never make an HTTP client.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
let loaded: typeof import("undici") | undefined;

/** The undici module, loaded on the first call. */
export function undici(): typeof import("undici") {
  loaded ??= require("undici") as typeof import("undici");
  return loaded;
}
