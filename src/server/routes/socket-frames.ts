// What the WebSocket routes (exec, console) share: JSON frames sent only while the socket is
// open, and ending a socket with an error: an `error` frame in the API's error shape, then a
// close code of 4000 + the error's HTTP status (4400, 4404, 4409, 4501…).

import type { FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { errorReply } from "../error-handling.ts";

/** Normal closure: the command ended, or the console's VM stopped. */
export const CLOSE_NORMAL = 1000;

/** Sends `frame` as JSON text if the socket is still open; false when it is not. */
export function sendFrame(socket: WebSocket, frame: object): boolean {
  if (socket.readyState !== socket.OPEN) return false;
  socket.send(JSON.stringify(frame));
  return true;
}

/**
 * Sends `{ type: "error", code, message, details }` for `error` and closes the socket with
 * 4000 + its status; the reason is the code (a close reason holds at most 123 bytes).
 */
export function closeWithError(socket: WebSocket, error: unknown, request: FastifyRequest): void {
  const { status, body } = errorReply(error, String(request.id));
  if (status >= 500) request.log.error({ err: error }, body.message);
  sendFrame(socket, { type: "error", ...body });
  if (socket.readyState === socket.OPEN) socket.close(4000 + status, body.code);
}
