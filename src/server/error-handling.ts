// One error shape for the whole API: a CorralError becomes `{ code, message, details }` with the
// status its code maps to; Fastify's own client errors (also those its router and Node's HTTP
// parser raise before any route runs) are CORRAL_INVALID_ARGUMENT; anything else is
// CORRAL_INTERNAL with no stack sent to the client (it goes to the log).

import type { Duplex } from "node:stream";
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchemaValidationError,
} from "fastify";
import { CorralError, ErrorCodes, httpStatus } from "../errors.ts";

export interface ErrorReply {
  status: number;
  body: { code: string; message: string; details: string[] };
}

/** Installs the error handler and the 404 handler on `app` (and so on every route below it). */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = errorReply(error, String(request.id));
    if (status >= 500) request.log.error({ err: error }, body.message);
    if (status === 401) reply.header("www-authenticate", 'Bearer realm="corral"');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      code: ErrorCodes.NOT_FOUND,
      message: `no route ${request.method} ${request.url.split("?")[0]}: the API is under /v1, and GET /openapi.json lists every route`,
      details: [],
    }),
  );
}

/**
 * Fastify's `frameworkErrors`: a URL its router cannot decode (`/v1/vms/%zz`) or a path parameter
 * past its length limit, answered in the API's error shape.
 */
export function frameworkError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = errorReply(error, String(request.id));
  void reply.code(status).send(body);
}

/**
 * Answers a request that Node's HTTP parser refused (a bad header, method or version, a header
 * section too large) in the API's error shape, then closes the connection. For Fastify's
 * `clientErrorHandler` and for the `clientError` event of the TCP server.
 */
export function clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  if (socket.writable) {
    const body = JSON.stringify({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `malformed HTTP request (${error.code ?? "unreadable"}): ${error.message}`,
      details: [],
    });
    const status = httpStatus(ErrorCodes.INVALID_ARGUMENT);
    socket.write(
      `HTTP/1.1 ${status} Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** The status and body that answer `error`. */
export function errorReply(error: unknown, requestId: string): ErrorReply {
  if (error instanceof CorralError) {
    return {
      status: httpStatus(error.code),
      body: { code: error.code, message: bareMessage(error), details: [...error.details] },
    };
  }
  if (isFastifyClientError(error)) {
    return {
      status: httpStatus(ErrorCodes.INVALID_ARGUMENT),
      body: { code: ErrorCodes.INVALID_ARGUMENT, message: error.message, details: [] },
    };
  }
  return {
    status: httpStatus(ErrorCodes.INTERNAL),
    body: {
      code: ErrorCodes.INTERNAL,
      message: `internal error in corral serve (request ${requestId}); its log has the details`,
      details: [],
    },
  };
}

/**
 * Fastify's `schemaErrorFormatter`: a request that fails its schema is CORRAL_INVALID_ARGUMENT
 * naming the field (`body/cpus must be >= 1`), one line per failed rule.
 */
export function validationError(errors: FastifySchemaValidationError[], part: string): CorralError {
  const [first = "", ...rest] = errors.map((error) => describeFailure(error, part));
  return new CorralError(ErrorCodes.INVALID_ARGUMENT, first, { details: rest });
}

function describeFailure(error: FastifySchemaValidationError, part: string): string {
  const where = `${part}${error.instancePath}`;
  const unknown = error.params.additionalProperty;
  if (error.keyword === "additionalProperties" && typeof unknown === "string") {
    return `${where}/${unknown} is not a known field`;
  }
  return `${where} ${error.message ?? "is invalid"}`;
}

/** A CorralError's message without the detail lines its constructor appended. */
function bareMessage(error: CorralError): string {
  const suffix = error.details.length > 0 ? `\n${error.details.join("\n")}` : "";
  return suffix && error.message.endsWith(suffix)
    ? error.message.slice(0, -suffix.length)
    : error.message;
}

/** Fastify's own errors about the request (bad JSON, wrong content type, body too large). */
function isFastifyClientError(error: unknown): error is FastifyError {
  const { code, statusCode } = error as Partial<FastifyError>;
  return (
    typeof code === "string" &&
    code.startsWith("FST_") &&
    typeof statusCode === "number" &&
    statusCode >= 400 &&
    statusCode < 500
  );
}
