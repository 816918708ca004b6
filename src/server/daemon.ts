// `corral serve` as one call: the state store, the template catalog, the token when there is a
// TCP address, the app, its doors.

import { TemplateCatalog } from "../manager/templates.ts";
import { Store } from "../store/store.ts";
import { buildApp, type CorralApp } from "./app.ts";
import { loadOrCreateToken } from "./auth.ts";
import type { DaemonConfig } from "./config.ts";
import { type Listening, listen } from "./listen.ts";

export interface Daemon extends Listening {
  readonly app: CorralApp;
}

/**
 * Starts the daemon that `config` describes; `close()` stops it, removes its socket and closes
 * its store. User templates that are refused are logged as warnings (file, line, field); the
 * daemon starts without them.
 */
export async function startDaemon(config: DaemonConfig): Promise<Daemon> {
  await using stack = new AsyncDisposableStack();
  const token = config.listen ? await loadOrCreateToken(config.stateDir) : undefined;
  const store = stack.use(await Store.open({ dir: config.stateDir }));
  const templates = new TemplateCatalog(store, config.templatesDir);
  const loaded = await templates.load();
  const app = await buildApp({
    logLevel: config.logLevel,
    token,
    limits: config.limits,
    templates,
  });
  let listening: Listening;
  try {
    for (const error of loaded.rejected) app.log.warn(`template refused: ${error.message}`);
    listening = await listen(app, { socket: config.socket, tcp: config.listen });
  } catch (error) {
    await app.close();
    throw error;
  }
  const storeStack = stack.move();
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= listening.close().finally(() => storeStack.disposeAsync());
    return closing;
  };
  return { app, socket: listening.socket, tcp: listening.tcp, close, [Symbol.asyncDispose]: close };
}
