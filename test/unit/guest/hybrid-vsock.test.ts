// The hybrid vsock handshake (`CONNECT <port>\n` → `OK <port>\n`) against a unix-socket peer that
// speaks it as Firecracker and Cloud Hypervisor do: accepting, refusing (closing), answering
// garbage, and answering slowly or never.

import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Deadline } from "../../../src/deadline.ts";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import {
  connectHybridVsock,
  HybridVsockTransport,
  VsockRefusedError,
} from "../../../src/guest/hybrid-vsock.ts";

type Behaviour = (socket: Socket, port: number) => void;

let dir: string;
let path: string;
let server: Server | undefined;
/** The CONNECT lines the peer received. */
let requests: string[];

const deadline = (timeout = 2000) => new Deadline("vsock test", { timeout }, timeout);

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-vsock-"));
  path = join(dir, "vsock.sock");
  requests = [];
});

afterEach(async () => {
  if (server) {
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A peer speaking the VMM's side; `behave` decides what each connection gets. */
async function peer(behave: Behaviour): Promise<void> {
  server = createServer((socket) => {
    socket.on("error", () => {});
    let line = "";
    const onData = (chunk: Buffer): void => {
      line += chunk.toString();
      if (!line.includes("\n")) return;
      socket.off("data", onData);
      requests.push(line);
      behave(socket, Number(/^CONNECT (\d+)\n$/.exec(line)?.[1]));
    };
    socket.on("data", onData);
  });
  server.listen(path);
  await once(server, "listening");
}

async function failure(promise: Promise<unknown>): Promise<CorralError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(CorralError);
  return error as CorralError;
}

describe("hybrid vsock handshake", () => {
  it("accepts: the bytes after OK are the guest's stream, and it echoes", async () => {
    await peer((socket, port) => {
      socket.write(`OK ${port + 1_000_000}\nhello`);
      socket.pipe(socket);
    });
    const socket = await connectHybridVsock(path, 7701, deadline());
    expect(requests).toEqual(["CONNECT 7701\n"]);
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.write(" world");
    await expect.poll(() => Buffer.concat(chunks).toString()).toBe("hello world");
    socket.destroy();
  });

  it("refused: the VMM closing the connection is a VsockRefusedError", async () => {
    await peer((socket) => socket.end());
    const error = await failure(connectHybridVsock(path, 7700, deadline()));
    expect(error).toBeInstanceOf(VsockRefusedError);
    expect(error.message).toMatch(/nothing listens in the guest yet/);
  });

  it("garbage: an answer other than OK <port> fails at once, naming what came", async () => {
    await peer((socket) => socket.write("ERR no such port\n"));
    const error = await failure(connectHybridVsock(path, 7700, deadline()));
    expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect(error).not.toBeInstanceOf(VsockRefusedError);
    expect(error.message).toContain('"ERR no such port"');
  });

  it("garbage: a long answer without a newline is not waited on", async () => {
    await peer((socket) => socket.write("x".repeat(200)));
    const error = await failure(connectHybridVsock(path, 7700, deadline()));
    expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect(error.message).toMatch(/not "OK <port>"/);
  });

  it("slow: an answer that comes in pieces is still read", async () => {
    await peer((socket, port) => {
      socket.write("O");
      setTimeout(() => socket.write(`K ${port}`), 50);
      setTimeout(() => socket.write("\nready"), 100);
    });
    const socket = await connectHybridVsock(path, 7702, deadline());
    const [chunk] = (await once(socket, "data")) as [Buffer];
    expect(chunk.toString()).toBe("ready");
    socket.destroy();
  });

  it("slow: no answer at all fails at the deadline", async () => {
    await peer(() => {});
    const started = performance.now();
    const error = await failure(connectHybridVsock(path, 7700, deadline(300)));
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("HybridVsockTransport", () => {
  it("dials again while the guest refuses, until it listens", async () => {
    let attempts = 0;
    await peer((socket, port) => {
      attempts += 1;
      if (attempts < 3) socket.end();
      else socket.write(`OK ${port}\n`);
    });
    const transport = new HybridVsockTransport(path);
    const socket = await transport.open("shell", deadline());
    expect(attempts).toBe(3);
    expect(requests.at(-1)).toBe("CONNECT 7700\n");
    socket.destroy();
  });

  it("waits for the VMM's socket to appear, and fails at the deadline if it never does", async () => {
    const transport = new HybridVsockTransport(path);
    const error = await failure(transport.open("xfer", deadline(300)));
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(error.message).toMatch(/ENOENT/);
  });

  it("a port the VM has no vsock port for is an error at once", async () => {
    const transport = new HybridVsockTransport(path);
    const error = await failure(transport.open("qga", deadline()));
    expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
  });
});
