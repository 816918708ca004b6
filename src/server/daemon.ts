// `corral serve` as one call: the token when there is a TCP address, the app, its doors.

import { buildApp, type CorralApp } from "./app.ts";
import { loadOrCreateToken } from "./auth.ts";
import type { DaemonConfig } from "./config.ts";
import { type Listening, listen } from "./listen.ts";

export interface Daemon extends Listening {
  readonly app: CorralApp;
}

/** Starts the daemon that `config` describes; `close()` stops it and removes its socket. */
export async function startDaemon(config: DaemonConfig): Promise<Daemon> {
  const token = config.listen ? await loadOrCreateToken(config.stateDir) : undefined;
  const app = await buildApp({ logLevel: config.logLevel, token, limits: config.limits });
  try {
    const listening = await listen(app, { socket: config.socket, tcp: config.listen });
    return Object.assign(listening, { app });
  } catch (error) {
    await app.close();
    throw error;
  }
}
