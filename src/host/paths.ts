// Where corral keeps its files on the host: the cache (images, verdicts) and per-run state.

import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

/** `$XDG_CACHE_HOME/corral`, or `~/.cache/corral`. */
export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "corral");
}

/** The image cache: one folder per built recipe. */
export function imagesDir(): string {
  return join(cacheDir(), "images");
}

/** Short-lived state (sockets, overlays) of running machines. Unix socket paths must stay short. */
export function runtimeDir(): string {
  return process.env.XDG_RUNTIME_DIR || tmpdir();
}

/** The boot snapshot cache of `corral test --reuse-boot`: one folder per machine and config. */
export function snapshotsDir(): string {
  return join(cacheDir(), "snapshots");
}
