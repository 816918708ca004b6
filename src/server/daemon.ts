// `corral serve` as one call: the token when there is a TCP address, the manager (its store under
// the state folder, reconciled with the VMs that run before anything is answered; its templates
// loaded), the app, its doors. Closing lets go of the VMs — they run on — unless asked to stop
// them.

import { Manager } from "../manager/manager.ts";
import { buildApp, type CorralApp } from "./app.ts";
import { loadOrCreateToken } from "./auth.ts";
import type { DaemonConfig } from "./config.ts";
import { type Listening, listen, refuseLiveDaemon } from "./listen.ts";

export interface Daemon extends Listening {
  readonly app: CorralApp;
  readonly manager: Manager;
  /**
   * Stops answering (event streams end, requests in flight finish), removes the socket, and lets
   * go of the VMs, or stops each (ACPI, then forced after 30 s) with `stopVms`. Idempotent.
   */
  close(options?: { stopVms?: boolean }): Promise<void>;
}

export interface StartDaemonOptions {
  /** How often an idle events stream gets a heartbeat comment; default 15000 ms. */
  eventsHeartbeatMs?: number;
}

/**
 * Starts the daemon that `config` describes. User templates that are refused are logged as
 * warnings (file, line, field); the daemon starts without them. So is the reason bridged networks
 * are unavailable (no root, a program missing): the daemon starts without them, its network
 * routes answer 503, its VMs get QEMU's user-mode NIC only (port forwards are hostfwd rules).
 */
export async function startDaemon(
  config: DaemonConfig,
  options: StartDaemonOptions = {},
): Promise<Daemon> {
  // Another daemon on this socket is refused before this one touches the state folder.
  await refuseLiveDaemon(config.socket);
  const token = config.listen ? await loadOrCreateToken(config.stateDir) : undefined;
  const manager = await Manager.open({
    stateDir: config.stateDir,
    templatesDir: config.templatesDir,
    maxVms: config.limits.maxVms,
    networks: config.networks,
  });
  let app: CorralApp | undefined;
  let listening: Listening;
  try {
    app = await buildApp({
      logLevel: config.logLevel,
      token,
      limits: config.limits,
      manager,
      ...options,
    });
    for (const refused of manager.templatesRefused) {
      app.log.warn(`template refused: ${refused.message}`);
    }
    if (manager.networks instanceof Error && config.networks.mode === "auto") {
      app.log.warn(`${manager.networks.message}; VMs get only QEMU's user-mode NIC`);
    }
    listening = await listen(app, { socket: config.socket, tcp: config.listen });
  } catch (error) {
    await app?.close();
    await manager.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const close = (closeOptions: { stopVms?: boolean } = {}) => {
    closing ??= (async () => {
      // Event streams first: a server waits for its open connections before it closes.
      manager.events.close();
      await listening.close();
      await manager.close(closeOptions);
    })();
    return closing;
  };
  return {
    app,
    manager,
    socket: listening.socket,
    tcp: listening.tcp,
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}

/**
 * `corral serve --cleanup-network`: removes what corral made on the host for `config`'s networks
 * (Manager.cleanupNetworks); returns what it removed. Throws CORRAL_CONFLICT while a daemon runs
 * on the state folder, CORRAL_NETWORK_UNAVAILABLE without root or the programs.
 */
export function cleanupNetworks(config: DaemonConfig): Promise<string[]> {
  return Manager.cleanupNetworks({ stateDir: config.stateDir, runDir: config.networks.runDir });
}
