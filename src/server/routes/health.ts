// GET /v1/health: whether the daemon answers, its version, how long it has run, its limits.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { errorResponses } from "../schemas.ts";

export const HealthReply = Type.Object({
  status: Type.Literal("ok"),
  version: Type.String({ description: "corral's version" }),
  uptimeS: Type.Number({ description: "seconds since the daemon started" }),
  limits: Type.Object({
    maxVms: Type.Integer({ description: "the most VMs the daemon keeps" }),
    maxUploadBytes: Type.Integer({ description: "the largest upload into a guest, in bytes" }),
  }),
});

export interface HealthRouteOptions {
  version: string;
  limits: { maxVms: number; maxUploadBytes: number };
}

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRouteOptions> = async (app, options) => {
  const started = performance.now();
  app.get(
    "/health",
    {
      schema: {
        summary: "whether the daemon answers",
        tags: ["daemon"],
        response: { 200: HealthReply, ...errorResponses },
      },
    },
    async () => ({
      status: "ok" as const,
      version: options.version,
      uptimeS: (performance.now() - started) / 1000,
      limits: options.limits,
    }),
  );
};
