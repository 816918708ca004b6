// Where corral keeps its files on the host: the cache (images, verdicts), per-run state, and the
// manager's lasting state.

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

/** `$XDG_STATE_HOME/corral`, or `~/.local/state/corral`: the manager's database and VM folders. */
export function stateDir(): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "corral");
}

/** Short-lived state (sockets, overlays) of running machines. Unix socket paths must stay short. */
export function runtimeDir(): string {
  return process.env.XDG_RUNTIME_DIR || tmpdir();
}

/** The boot snapshot cache of `corral test --reuse-boot`: one folder per machine and config. */
export function snapshotsDir(): string {
  return join(cacheDir(), "snapshots");
}
