// The daemon's Fastify app: TypeBox schemas on every route, OpenAPI generated from them
// (/openapi.json, and a docs page at /docs), the API under /v1, one error shape, pino logs.

import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import websocket from "@fastify/websocket";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from "fastify";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { ImageService } from "../manager/images.ts";
import type { Manager } from "../manager/manager.ts";
import type { NetworkService } from "../manager/networks.ts";
import { packageVersion } from "../package-version.ts";
import { requireToken } from "./auth.ts";
import { type DaemonConfig, DEFAULT_LIMITS } from "./config.ts";
import type { LogLevel } from "./config-settings.ts";
import {
  clientError,
  frameworkError,
  registerErrorHandling,
  validationError,
} from "./error-handling.ts";
import { consoleRoutes } from "./routes/console.ts";
import { eventRoutes } from "./routes/events.ts";
import { guestRoutes } from "./routes/guest.ts";
import type { GuestResolver } from "./routes/guest-context.ts";
import { healthRoutes } from "./routes/health.ts";
import { imageRoutes } from "./routes/images.ts";
import { jobRoutes } from "./routes/jobs.ts";
import { networkRoutes } from "./routes/networks.ts";
import { portRoutes } from "./routes/ports.ts";
import { snapshotRoutes } from "./routes/snapshots.ts";
import { templateRoutes } from "./routes/templates.ts";
import { vmRoutes } from "./routes/vms.ts";
import { ErrorBody } from "./schemas.ts";

/** The API's base path. */
export const API_PREFIX = "/v1";

export type CorralApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface BuildAppOptions {
  /** pino's level; default "info". Tests use "silent". */
  logLevel?: LogLevel;
  /** The bearer token required on every request that does not come through the unix socket. */
  token?: string | undefined;
  limits?: DaemonConfig["limits"];
  /**
   * The manager whose VMs, snapshots, templates, images, jobs and events the API serves; without
   * it, only /v1/health.
   */
  manager?: Manager | undefined;
  /** How often an idle events stream gets a heartbeat comment; default 15000 ms. */
  eventsHeartbeatMs?: number;
  /** Serves /v1/images, and /v1/jobs from its job service; default: the manager's. */
  images?: ImageService;
  /**
   * Serves /v1/networks: the service, or the CORRAL_NETWORK_UNAVAILABLE error that says why there
   * is none (every network route then answers it, 503). Default: the manager's. A manager's
   * /v1/vms/{id}/ports are its own (Manager.ports).
   */
  networks?: NetworkService | CorralError;
  /**
   * Where /v1/vms/{id}/guest/… finds a VM's guest; default: the manager's (VmService.guest).
   * Tests of the HTTP layer give a fake.
   */
  guests?: GuestResolver;
  /** How often a followed guest log (…/guest/logs?follow=true) polls the guest; default 1000 ms. */
  logPollMs?: number;
}

/** The most a WebSocket frame may carry (a stdin frame, base64 in JSON): 16 MiB. */
const MAX_FRAME_BYTES = 16 * 2 ** 20;

/**
 * A Fastify app with corral's routes, not yet listening (see listen.ts). Routes added to it
 * before it listens get the same error handling and appear in the OpenAPI document.
 */
export async function buildApp(options: BuildAppOptions = {}): Promise<CorralApp> {
  const app = Fastify({
    logger: { level: options.logLevel ?? "info" },
    // An unknown field in a body is a mistake to report, not to drop silently.
    ajv: { customOptions: { removeAdditional: false } },
    schemaErrorFormatter: validationError,
    // Requests that arrive while closing get our error shape (below), not Fastify's own 503 body.
    return503OnClosing: false,
    // Errors raised before any route runs get the API's error shape too.
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerErrorHandling(app);
  let isClosing = false;
  app.addHook("preClose", async () => {
    isClosing = true;
  });
  app.addHook("onRequest", async () => {
    if (isClosing) {
      throw new CorralError(ErrorCodes.DAEMON_UNREACHABLE, "corral serve is stopping");
    }
  });
  requireToken(app, options.token);

  app.addSchema(ErrorBody);
  await app.register(swagger, {
    openapi: {
      info: {
        title: "corral",
        description:
          "corral's VM manager. Errors are ErrorBody objects whose code maps to the HTTP status (docs/errors.md). Over the unix socket no token is needed; over TCP every request needs `Authorization: Bearer <token>` (`corral serve token`).",
        version: packageVersion(),
      },
      components: {
        securitySchemes: { bearerAuth: { type: "http", scheme: "bearer" } },
      },
      // The empty alternative: the unix socket needs no token.
      security: [{}, { bearerAuth: [] }],
    },
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`),
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  await app.register(websocket, { options: { maxPayload: MAX_FRAME_BYTES } });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  const limits = options.limits ?? DEFAULT_LIMITS;
  await app.register(healthRoutes, {
    prefix: API_PREFIX,
    version: packageVersion(),
    limits,
  });
  const { manager } = options;
  const guests: GuestResolver | undefined =
    options.guests ?? (manager && ((idOrName) => manager.vms.guest(idOrName)));
  if (guests) {
    await app.register(guestRoutes, {
      prefix: API_PREFIX,
      guests,
      maxUploadBytes: limits.maxUploadBytes,
      ...(options.logPollMs !== undefined && { logPollMs: options.logPollMs }),
    });
  }
  if (manager) {
    await app.register(vmRoutes, { prefix: API_PREFIX, manager });
    await app.register(consoleRoutes, { prefix: API_PREFIX, manager });
    await app.register(snapshotRoutes, { prefix: API_PREFIX, manager });
    await app.register(templateRoutes, { prefix: API_PREFIX, templates: manager.templates });
    await app.register(eventRoutes, {
      prefix: API_PREFIX,
      manager,
      ...(options.eventsHeartbeatMs !== undefined
        ? { heartbeatMs: options.eventsHeartbeatMs }
        : {}),
    });
  }
  const images = options.images ?? manager?.images;
  if (images) {
    await app.register(imageRoutes, { prefix: API_PREFIX, images });
    await app.register(jobRoutes, { prefix: API_PREFIX, jobs: images.jobs });
  }
  const networks = options.networks ?? manager?.networks;
  if (networks) await app.register(networkRoutes, { prefix: API_PREFIX, networks });
  if (manager) await app.register(portRoutes, { prefix: API_PREFIX, manager });
  return app;
}
