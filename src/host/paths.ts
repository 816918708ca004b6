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

/** Short-lived state (sockets, overlays) of running machines. Unix socket paths must stay short. */
export function runtimeDir(): string {
  return process.env.XDG_RUNTIME_DIR || tmpdir();
}

/** The boot snapshot cache of `corral test --reuse-boot`: one folder per machine and config. */
export function snapshotsDir(): string {
  return join(cacheDir(), "snapshots");
}

/** The manager's persistent state (database, API token, VM folders): `$XDG_STATE_HOME/corral`, or `~/.local/state/corral`. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "corral");
}

/** The user's corral settings: `$XDG_CONFIG_HOME/corral`, or `~/.config/corral`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "corral");
}

/** The user's VM templates, one `<name>.yaml` each: `$XDG_CONFIG_HOME/corral/templates`. */
export function userTemplatesDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), "templates");
}

/** The daemon's default unix socket: under `$XDG_RUNTIME_DIR`, else under `/run` (as root). */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_RUNTIME_DIR || "/run", "corral", "corral.sock");
}

/** The longest path a unix socket can be bound at on Linux (`sun_path` holds 108 bytes with its NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;
