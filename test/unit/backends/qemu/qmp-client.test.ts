// The QMP client against a real peer on a unix socket that speaks QMP as QEMU does.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ExitScope } from "../../../../src/backends/exit-scope.ts";
import { QmpClient, QmpError } from "../../../../src/backends/qemu/qmp-client.ts";
import { Deadline } from "../../../../src/deadline.ts";
import { ErrorCodes, MachineExitedError } from "../../../../src/errors.ts";

type Reply = (request: { execute: string; id: number; arguments?: unknown }, peer: Socket) => void;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A fake QEMU monitor: greets, accepts qmp_capabilities, then answers with `reply`. */
async function fakeQemu(reply: Reply): Promise<{ client: QmpClient; peer: Socket }> {
  const dir = mkdtempSync(join(tmpdir(), "corral-qmp-"));
  const path = join(dir, "qmp.sock");
  let peer: Socket | undefined;
  const server: Server = createServer((socket) => {
    peer = socket;
    socket.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    let partial = "";
    socket.on("data", (chunk) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const request = JSON.parse(line);
        if (request.execute === "qmp_capabilities") {
          socket.write(`${JSON.stringify({ return: {}, id: request.id })}\n`);
        } else {
          reply(request, socket);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  cleanups.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const { connect } = await import("node:net");
  const socket = connect(path);
  const client = await QmpClient.connect(socket);
  cleanups.push(() => client.close());
  if (!peer) throw new Error("the fake QEMU saw no connection");
  return { client, peer };
}

describe("QmpClient", () => {
  it("matches replies to commands by id, whatever order they come in", async () => {
    const held: { id: number; execute: string }[] = [];
    const { client } = await fakeQemu((request, peer) => {
      held.push(request);
      if (held.length < 2) return;
      for (const { id, execute } of held.reverse()) {
        peer.write(`${JSON.stringify({ return: { was: execute }, id })}\n`);
      }
    });
    const [first, second] = await Promise.all([
      client.execute("query-status"),
      client.execute("query-block"),
    ]);
    expect(first).toEqual({ was: "query-status" });
    expect(second).toEqual({ was: "query-block" });
  });

  it("passes arguments and rejects with QEMU's error class and description", async () => {
    const { client } = await fakeQemu((request, peer) => {
      peer.write(
        `${JSON.stringify({
          error: { class: "DeviceNotFound", desc: `no ${JSON.stringify(request.arguments)}` },
          id: request.id,
        })}\n`,
      );
    });
    const failure = client.execute("set_link", { name: "nic9", up: false });
    await expect(failure).rejects.toBeInstanceOf(QmpError);
    await expect(failure).rejects.toMatchObject({
      code: ErrorCodes.QMP_ERROR,
      errorClass: "DeviceNotFound",
      description: 'no {"name":"nic9","up":false}',
    });
  });

  it("delivers events split across reads, and ignores noise that is not JSON", async () => {
    const { client, peer } = await fakeQemu(() => {});
    const events: string[] = [];
    client.onEvent((event) => events.push(event.event));
    const event = JSON.stringify({ event: "STOP", timestamp: { seconds: 1, microseconds: 2 } });
    peer.write(`garbage\n${event.slice(0, 10)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    peer.write(`${event.slice(10)}\n`);
    await expect.poll(() => events).toEqual(["STOP"]);
  });

  it("fails a command at its own timeout, and the connection stays usable", async () => {
    let answer = false;
    const { client } = await fakeQemu((request, peer) => {
      if (answer) peer.write(`${JSON.stringify({ return: 7, id: request.id })}\n`);
    });
    await expect(client.execute("query-status", {}, { timeout: 50 })).rejects.toMatchObject({
      code: ErrorCodes.TIMEOUT,
      message: expect.stringContaining("QMP query-status: timed out"),
    });
    answer = true;
    await expect(client.execute("query-status")).resolves.toBe(7);
  });

  it("fails every pending command at once when QEMU closes the socket", async () => {
    const { client, peer } = await fakeQemu(() => {});
    const pending = client.execute("migrate", {}, { timeout: 60_000 });
    peer.destroy();
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.QMP_CLOSED });
    await expect(client.execute("cont")).rejects.toMatchObject({ code: ErrorCodes.QMP_CLOSED });
  });
});

// A verb's QMP command that QEMU's exit overtakes: the exit scope answers "machine exited" at once,
// and the command's own QMP_CLOSED, arriving later or already there, must not end the process
// (seen as an unhandled CORRAL_QMP_CLOSED in many-file runs while machines were stopping).
describe("a QMP command racing QEMU's exit", () => {
  const exitedError = (during: string) =>
    new MachineExitedError(`QEMU exited while ${during}`, { machine: "m" });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeEach(() => {
    unhandled.length = 0;
    process.on("unhandledRejection", onUnhandled);
  });
  afterEach(() => {
    process.off("unhandledRejection", onUnhandled);
  });

  it("fails with the exit, and the command's QMP_CLOSED is not left unhandled", async () => {
    const { client, peer } = await fakeQemu(() => {});
    const scope = new ExitScope(Promise.resolve({ code: 0, signal: null }), exitedError);
    await scope.exited; // QEMU has exited, its QMP socket not yet seen closed
    const deadline = new Deadline("screenshot", { timeout: 60_000 }, 0);
    const screenshot = scope.race(client.execute("screendump", {}, deadline), deadline, "x");
    await expect(screenshot).rejects.toBeInstanceOf(MachineExitedError);
    peer.destroy();
    await expect(client.execute("cont")).rejects.toMatchObject({ code: ErrorCodes.QMP_CLOSED });
    await sleep(50);
    expect(unhandled).toEqual([]);
  });

  it("a deadline that has fired leaves the raced command handled too", async () => {
    const { client, peer } = await fakeQemu(() => {});
    const deadline = new Deadline("screenshot", { timeout: 0 }, 0);
    await sleep(5);
    const command = client.execute("screendump", {}, { timeout: 60_000 });
    await expect(deadline.race(command)).rejects.toMatchObject({ code: ErrorCodes.TIMEOUT });
    peer.destroy();
    await sleep(50);
    expect(unhandled).toEqual([]);
  });
});
