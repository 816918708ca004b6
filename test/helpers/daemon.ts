// The whole daemon (`startDaemon`: store, templates, routes) in this process, on a socket in a
// new temporary folder that also holds its state and templates folders; quiet.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DaemonConfig, ListenAddress } from "../../src/server/config.ts";
import { type Daemon, startDaemon } from "../../src/server/daemon.ts";

export interface TemporaryDaemon extends AsyncDisposable {
  daemon: Daemon;
  config: DaemonConfig;
  /** `{ socket }`, for http(). */
  socket: { socket: string };
}

/**
 * Starts a daemon in a new temporary folder; disposing it stops it (and every VM it started) and
 * removes the folder.
 */
export async function startTemporaryDaemon(
  options: { tcp?: ListenAddress; prepare?: (config: DaemonConfig) => Promise<void> } = {},
): Promise<TemporaryDaemon> {
  const dir = await mkdtemp(join(tmpdir(), "corral-daemon-"));
  const config: DaemonConfig = {
    stateDir: join(dir, "state"),
    templatesDir: join(dir, "templates"),
    socket: join(dir, "corral.sock"),
    listen: options.tcp,
    logLevel: "silent",
    limits: { maxVms: 8, maxUploadBytes: 4 * 2 ** 30 },
    // Tests never touch the host's own network: bridged networks are tested in namespaces.
    networks: { mode: "off", runDir: join(dir, "networks") },
  };
  let daemon: Daemon;
  try {
    await options.prepare?.(config);
    daemon = await startDaemon(config);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    daemon,
    config,
    socket: { socket: daemon.socket },
    async [Symbol.asyncDispose]() {
      await daemon.close({ stopVms: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
