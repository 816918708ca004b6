// The unix socket QEMU's chardevs dial: one connection, or (redialled) each new one in turn.

import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnixListener } from "../../../src/host/unix-listener.ts";

let dir: string;
const clients: Socket[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "corral-listener-"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await rm(dir, { recursive: true, force: true });
});

async function dial(path: string): Promise<Socket> {
  const socket = connect(path);
  clients.push(socket);
  await once(socket, "connect");
  return socket;
}

async function readLine(socket: Socket): Promise<string> {
  const [chunk] = (await once(socket, "data")) as [Buffer];
  return chunk.toString();
}

describe("UnixListener", () => {
  it("accepts one connection, then no more", async () => {
    const listener = await UnixListener.listen(join(dir, "a.sock"));
    const client = await dial(listener.path);
    const accepted = await listener.accepted;
    accepted.write("one");
    expect(await readLine(client)).toBe("one");
    await expect(dial(listener.path)).rejects.toThrow();
    listener.close();
  });

  it("redialled, hands out the newest open connection to each next()", async () => {
    const listener = await UnixListener.listen(join(dir, "b.sock"), { isRedialled: true });
    const first = await dial(listener.path);
    const taken = await listener.next();
    expect(taken).toBe(await listener.accepted);
    taken.write("first");
    expect(await readLine(first)).toBe("first");
    taken.destroy();
    // The peer dials again after its connection closed; next() waits for it.
    const pending = listener.next();
    const second = await dial(listener.path);
    (await pending).write("second");
    expect(await readLine(second)).toBe("second");
    listener.close();
    await once(second, "close");
  });
});
