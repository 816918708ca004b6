// The QGA client against a fake agent (test/helpers/fake-qga-peer.ts), for what the real one on
// the host must not do (guest-shutdown) or never does (answer with garbage).

import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Deadline } from "../../../src/deadline.ts";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { QgaClient } from "../../../src/guest/qga-client.ts";
import { QgaError } from "../../../src/guest/qga-protocol.ts";
import {
  type FakeAnswer,
  type FakeQgaPeer,
  startFakeQgaPeer,
} from "../../helpers/fake-qga-peer.ts";

let peer: FakeQgaPeer | undefined;
let client: QgaClient | undefined;

const deadline = (timeout = 5000) => new Deadline("qga test", { timeout }, timeout);

afterEach(async () => {
  client?.close();
  await peer?.close();
});

/** A peer that answers guest-ping, and guest-shutdown with `onShutdown`; a connected client. */
async function start(onShutdown: FakeAnswer | (() => FakeAnswer)): Promise<QgaClient> {
  peer = await startFakeQgaPeer((command) => {
    if (command === "guest-ping") return { return: {} };
    if (command === "guest-shutdown")
      return typeof onShutdown === "function" ? onShutdown() : onShutdown;
    return {
      error: { class: "CommandNotFound", desc: `The command ${command} has not been found` },
    };
  });
  client = await QgaClient.connect(peer.open, deadline());
  return client;
}

describe("guest-shutdown", () => {
  it("is confirmed by the sync sent behind it when the agent answers nothing", async () => {
    const qga = await start("nothing");
    expect(await qga.shutdown("powerdown", deadline())).toEqual({ isConfirmed: true });
    expect(peer?.received.at(-1)).toEqual({
      execute: "guest-shutdown",
      arguments: { mode: "powerdown" },
    });
    await qga.ping(deadline());
  });

  it("fails with the agent's error, and the channel stays usable", async () => {
    const qga = await start({
      error: { class: "GenericError", desc: "child process has failed to shutdown" },
    });
    const error = await qga.shutdown("reboot", deadline()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QgaError);
    expect((error as QgaError).description).toBe("child process has failed to shutdown");
    await qga.ping(deadline());
  });

  it("is unconfirmed when the channel closes or stays silent", async () => {
    const closing = await start("close");
    expect(await closing.shutdown("halt", deadline())).toEqual({ isConfirmed: false });
    closing.close();
    await peer?.close();

    // An agent that stops once it took the request: the sync behind it never comes back.
    peer = await startFakeQgaPeer((command) =>
      command === "guest-ping" ? { return: {} } : "hang",
    );
    client = await QgaClient.connect(peer.open, deadline());
    const started = performance.now();
    expect(await client.shutdown("powerdown", deadline(), { confirmWithinMs: 200 })).toEqual({
      isConfirmed: false,
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe("replies a healthy agent never sends", () => {
  it("fails a call answered with garbage as out of step, and syncs before the next", async () => {
    let isGarbled = true;
    peer = await startFakeQgaPeer((command) => {
      if (command === "guest-get-host-name" && isGarbled) {
        isGarbled = false;
        return { raw: "this is not json\n" };
      }
      if (command === "guest-get-host-name") return { return: { "host-name": "fake" } };
      return { return: {} };
    });
    client = await QgaClient.connect(peer.open, deadline());
    const error = await client.hostName(deadline()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CorralError);
    expect((error as CorralError).code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect((error as CorralError).message).toContain("not a reply");
    expect(await client.hostName(deadline())).toBe("fake");
  });
});

describe("deadlines", () => {
  it("fails to connect within the deadline when nothing answers on the port", async () => {
    // QEMU's end of the port accepts even when no agent runs in the guest.
    const dir = mkdtempSync(join(tmpdir(), "corral-silent-port-"));
    const path = join(dir, "port.sock");
    const sockets: Socket[] = [];
    const server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const error = await QgaClient.connect(async () => connect(path), deadline(300)).catch(
        (caught: unknown) => caught,
      );
      expect((error as CorralError).code).toBe(ErrorCodes.TIMEOUT);
      expect((error as CorralError).message).toContain("is qemu-ga running in the guest?");
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails a call queued behind a stuck one at its own deadline, or when its caller aborts", async () => {
    peer = await startFakeQgaPeer((command) =>
      command === "guest-get-host-name" ? "nothing" : { return: {} },
    );
    client = await QgaClient.connect(peer.open, deadline());
    const stuck = client.hostName(deadline(2000)).catch((caught: unknown) => caught);
    const queued = (await client
      .ping(deadline(200))
      .catch((caught: unknown) => caught)) as CorralError;
    expect(queued.code).toBe(ErrorCodes.TIMEOUT);
    expect(queued.message).toContain("earlier guest agent call to end: guest-get-host-name");

    const controller = new AbortController();
    const aborted = client
      .ping(new Deadline("ping", { timeout: 10_000, signal: controller.signal }, 0))
      .catch((caught: unknown) => caught);
    controller.abort();
    expect(((await aborted) as CorralError).code).toBe(ErrorCodes.ABORTED);
    expect(((await stuck) as CorralError).code).toBe(ErrorCodes.TIMEOUT);
    await client.ping(deadline());
  });
});
