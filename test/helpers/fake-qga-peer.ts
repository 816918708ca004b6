// A fake guest agent on a unix socket, for what the real qemu-ga must not do on the host (shut
// it down) and for replies a healthy agent never sends. It speaks the agent's framing: a 0xFF
// byte draws the agent's stray-byte error line, guest-sync-delimited answers behind a 0xFF, and
// every other request gets what `answer` says.

import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Deadline } from "../../src/deadline.ts";
import type { QgaOpen } from "../../src/guest/qga-client.ts";

/**
 * A reply line, nothing (as guest-shutdown on success), nothing ever again on this connection
 * (an agent that stopped), a closed connection, or raw bytes.
 */
export type FakeAnswer =
  | { return: unknown }
  | { error: { class: string; desc: string } }
  | "nothing"
  | "hang"
  | "close"
  | { raw: string };

export interface FakeQgaPeer {
  open: QgaOpen;
  /** The requests received other than guest-sync-delimited, in order. */
  received: { execute: string; arguments?: Record<string, unknown> }[];
  close(): Promise<void>;
}

const STRAY_BYTE_ERROR = `${JSON.stringify({
  error: { class: "GenericError", desc: "JSON parse error, stray '\uFFFD'" },
})}\n`;

export async function startFakeQgaPeer(
  answer: (command: string, args: Record<string, unknown> | undefined) => FakeAnswer,
): Promise<FakeQgaPeer> {
  const dir = mkdtempSync(join(tmpdir(), "corral-fake-qga-"));
  const path = join(dir, "qga.sock");
  const received: FakeQgaPeer["received"] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let pending = "";
    let isHung = false;
    socket.on("data", (chunk: Buffer) => {
      for (const byte of chunk) {
        if (isHung) return;
        if (byte === 0xff) {
          pending = "";
          socket.write(STRAY_BYTE_ERROR);
          continue;
        }
        if (byte !== 0x0a) {
          pending += String.fromCharCode(byte);
          continue;
        }
        const request = JSON.parse(pending) as FakeQgaPeer["received"][number];
        pending = "";
        if (request.execute === "guest-sync-delimited") {
          const id = (request.arguments as { id: number }).id;
          socket.write(Buffer.concat([Buffer.of(0xff), Buffer.from(`{"return": ${id}}\n`)]));
          continue;
        }
        received.push(request);
        const reply = answer(request.execute, request.arguments);
        if (reply === "close") {
          socket.destroy();
          return;
        }
        if (reply === "nothing") continue;
        if (reply === "hang") {
          isHung = true;
          return;
        }
        if ("raw" in reply) socket.write(reply.raw);
        else socket.write(`${JSON.stringify(reply)}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    open: (deadline: Deadline) =>
      deadline.race(
        new Promise((resolve, reject) => {
          const stream = connect(path);
          stream.once("connect", () => resolve(stream));
          stream.once("error", reject);
        }),
      ),
    received,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
