// /v1/vms/{id}/guest/…: everything done inside a VM's guest through its channel (GuestOps):
// exec (one-shot and WebSocket), files, system info, processes, health, shutdown, services, logs.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { GuestResolver } from "./guest-context.ts";
import { guestExecRoutes } from "./guest-exec.ts";
import { guestFileRoutes } from "./guest-files.ts";
import { guestLogRoutes } from "./guest-logs.ts";
import { guestSystemRoutes } from "./guest-system.ts";

export interface GuestRouteOptions {
  guests: GuestResolver;
  /** The largest upload into a guest, in bytes (limits.maxUploadBytes). */
  maxUploadBytes: number;
  /** How often a followed log polls the guest; default 1000 ms. */
  logPollMs?: number;
}

export const guestRoutes: FastifyPluginAsyncTypebox<GuestRouteOptions> = async (app, options) => {
  const { guests } = options;
  await app.register(guestExecRoutes, { guests });
  await app.register(guestFileRoutes, { guests, maxUploadBytes: options.maxUploadBytes });
  await app.register(guestSystemRoutes, { guests });
  await app.register(guestLogRoutes, {
    guests,
    ...(options.logPollMs !== undefined && { pollMs: options.logPollMs }),
  });
};
