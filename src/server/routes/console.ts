// GET /v1/vms/{id}/console as a WebSocket: the VM's serial console both ways, in binary frames.
// A client first gets the recent output (kept from boot on), then the output as it comes; what
// it sends is typed on the console. The socket closes when the VM stops.

import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import type { RawData, WebSocket } from "ws";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { Manager } from "../../manager/manager.ts";
import { errorResponses } from "../schemas.ts";
import { CLOSE_NORMAL, closeWithError } from "./socket-frames.ts";
import { VmParams } from "./vm-route-schemas.ts";

export interface ConsoleRouteOptions {
  manager: Manager;
}

/** A running VM's serial console (a Machine is one). */
export interface ConsoleSource {
  consoleBytes(maxBytes?: number): Buffer;
  onConsoleData(listener: (chunk: Buffer) => void): () => void;
  sendConsole(text: string): void;
  onStateChange(listener: (state: string) => void): () => void;
}

/** The most recent output a client can ask to see again: 256 KiB, what the VM keeps. */
const MAX_REPLAY_BYTES = 256 * 1024;
const ENDED_STATES = new Set(["stopping", "stopped", "exited"]);

const ConsoleQuery = Type.Object(
  {
    replayBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_REPLAY_BYTES,
        default: 65_536,
        description: "how much recent output to send first, in bytes (default 65536; 0: none)",
      }),
    ),
  },
  { additionalProperties: false },
);

const PROTOCOL = [
  "Upgrade to a WebSocket. The server sends the console's output in binary frames: first up to `replayBytes` of recent output (kept from the VM's boot on, escape sequences included), then the output as it comes. Every frame the client sends (text or binary) is typed on the console as it is (a terminal's keys: `\\r` for Enter).",
  "The socket closes with 1000 when the VM stops. An error (no such VM, a VM that does not run) is a text frame `{type: error, code, message, details}` and a close code of 4000 + its HTTP status.",
].join("\n\n");

export const consoleRoutes: FastifyPluginAsyncTypebox<ConsoleRouteOptions> = async (
  app,
  { manager },
) => {
  const consoleOf = (idOrName: string): ConsoleSource => {
    const machine = manager.vms.machineOf(idOrName);
    if (machine === undefined) {
      const vm = manager.vms.get(idOrName);
      throw new CorralError(
        ErrorCodes.MACHINE_NOT_RUNNING,
        `VM "${vm.name}" is ${vm.state}: its console needs it running (corral vm start ${vm.name})`,
      );
    }
    return machine;
  };

  app.route({
    method: "GET",
    url: "/vms/:id/console",
    schema: {
      summary: "the VM's serial console, both ways (WebSocket)",
      description: PROTOCOL,
      tags: ["vms"],
      params: VmParams,
      querystring: ConsoleQuery,
      response: {
        101: Type.Null({ description: "switched to the WebSocket protocol described above" }),
        ...errorResponses,
      },
    },
    handler: async () => {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        "GET …/console is a WebSocket: send Connection: Upgrade and Upgrade: websocket (corral vm console does)",
      );
    },
    wsHandler: (socket: WebSocket, request) => {
      const { id } = request.params as { id: string };
      const { replayBytes = 65_536 } = request.query as { replayBytes?: number };
      let source: ConsoleSource;
      try {
        source = consoleOf(id);
      } catch (error) {
        return closeWithError(socket, error, request);
      }
      const send = (chunk: Buffer) => {
        if (socket.readyState === socket.OPEN) socket.send(chunk, { binary: true });
      };
      // Replayed and subscribed in one synchronous step: no output falls in between.
      const replay = replayBytes > 0 ? source.consoleBytes(replayBytes) : Buffer.alloc(0);
      if (replay.length > 0) send(replay);
      const unsubscribe = source.onConsoleData(send);
      const unwatch = source.onStateChange((state) => {
        if (ENDED_STATES.has(state) && socket.readyState === socket.OPEN) {
          socket.close(CLOSE_NORMAL, "the VM stopped");
        }
      });
      socket.on("message", (data: RawData) => {
        try {
          source.sendConsole(rawBytes(data).toString());
        } catch (error) {
          closeWithError(socket, error, request);
        }
      });
      socket.on("close", () => {
        unsubscribe();
        unwatch();
      });
    },
  });
};

function rawBytes(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}
