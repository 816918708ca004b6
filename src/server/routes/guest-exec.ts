// /v1/vms/{id}/guest/execute: POST runs a command and answers once it has ended; GET upgraded to a
// WebSocket streams it (guest-exec-socket.ts).

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { CorralError, ErrorCodes } from "../../errors.ts";
import { errorResponses } from "../schemas.ts";
import { type GuestResolver, requestDeadline } from "./guest-context.ts";
import { execReply, toExecRequest } from "./guest-exec-request.ts";
import { serveExecSocket } from "./guest-exec-socket.ts";
import { ExecBody, ExecReply } from "./guest-schemas.ts";
import { VmParams } from "./vm-route-schemas.ts";

export interface GuestExecRouteOptions {
  guests: GuestResolver;
}

/** How long past its own timeout a command may take to be killed and reported. */
const EXEC_GRACE_MS = 30_000;

const WEBSOCKET_PROTOCOL = [
  "Upgrade to a WebSocket (`Connection: Upgrade`, `Upgrade: websocket`); all frames are JSON text.",
  "The client's first frame says what to run: the fields of POST execute without stdin, plus `tty` (a pseudo-terminal), `columns`, `rows`, and `detach` (the command outlives a dropped connection).",
  'Then the client may send `{"type":"stdin","data":"<base64>"}`, `{"type":"eof"}`, `{"type":"signal","signal":"TERM"}` and `{"type":"resize","columns":120,"rows":40}`.',
  'The server sends `{"type":"stdout","data":"<base64>"}` and `{"type":"stderr","data":"<base64>"}` as output comes, each stream in order, and last `{"type":"exit","exitCode":0}` (with `"isTimedOut":true` when timeoutMs passed and the command was killed), then closes with 1000.',
  'An error (a bad frame, no such VM, a channel that cannot stream: CORRAL_UNSUPPORTED) is a frame `{"type":"error","code","message","details"}` and a close code of 4000 + its HTTP status (4400, 4404, 4409, 4501…).',
  "Closing the socket before the exit frame kills the command, unless `detach: true`.",
].join("\n\n");

export const guestExecRoutes: FastifyPluginAsyncTypebox<GuestExecRouteOptions> = async (
  app,
  { guests },
) => {
  app.post(
    "/vms/:id/guest/execute",
    {
      // stdin travels in the body, base64: up to 16 MiB of it.
      bodyLimit: 24 * 2 ** 20,
      schema: {
        summary: "run a command in the guest and answer once it has ended",
        description:
          "A program that does not exist is exit code 127 in the answer (not an error). A command that runs past timeoutMs is killed in the guest and answered with `isTimedOut: true`; without timeoutMs it runs until it ends, also if the client goes away.",
        tags: ["guest"],
        params: VmParams,
        body: ExecBody,
        response: { 200: ExecReply, ...errorResponses },
      },
    },
    async (request, reply) => {
      const execRequest = toExecRequest(request.body, "body");
      const guest = await guests(request.params.id);
      // Without a timeout the call has no deadline but the client's: a finite one would have
      // the backdoor shell watch the command in the guest, which costs a process per call.
      const { timeoutMs } = request.body;
      const deadline = requestDeadline(
        request,
        reply,
        "execute",
        timeoutMs === undefined ? Number.POSITIVE_INFINITY : timeoutMs + EXEC_GRACE_MS,
      );
      const started = performance.now();
      const outcome = await guest.exec(execRequest, deadline);
      return execReply(outcome, performance.now() - started);
    },
  );

  app.route({
    method: "GET",
    url: "/vms/:id/guest/execute",
    schema: {
      summary: "run a command in the guest, streaming its input and output (WebSocket)",
      description: WEBSOCKET_PROTOCOL,
      tags: ["guest"],
      params: VmParams,
      response: {
        101: Type.Null({ description: "switched to the WebSocket protocol described above" }),
        ...errorResponses,
      },
    },
    handler: async () => {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        "GET …/guest/execute is a WebSocket: send Connection: Upgrade and Upgrade: websocket (POST …/guest/execute runs a command without one)",
      );
    },
    wsHandler: (socket, request) =>
      serveExecSocket(socket, request, (request.params as { id: string }).id, guests),
  });
};
