// The guest routes and the serial console on one real VM, over real HTTP and WebSockets on a
// real daemon's unix socket: the console replays the boot and takes keys.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import type { Machine } from "../../src/machine/machine.ts";
import { type ManagerDaemon, qemuPidsUnder, startManagerDaemon } from "../helpers/manager.ts";
import { openTestSocket } from "../helpers/web-socket.ts";

let manager: ManagerDaemon;

/** The daemon's own Machine of VM `name`, to check what the guest saw. */
function daemonMachine(name: string): Machine {
  const machine = manager.daemon.manager.vms.machineOf(name);
  if (!machine) throw new Error(`the daemon has no machine for ${name}`);
  return machine;
}

beforeAll(async () => {
  manager = await startManagerDaemon();
  const created = await manager.api("POST", "/v1/vms", { name: "web", cpus: 1, memoryMiB: 512 });
  expect(created.status, created.text).toBe(201);
  const idle = await manager.api("POST", "/v1/vms", { name: "idle", start: false });
  expect(idle.status, idle.text).toBe(201);
});

afterAll(async () => {
  await manager?.api("POST", "/v1/vms/web/stop", { force: true });
  const stateDir = manager?.stateDir;
  await manager?.[Symbol.asyncDispose]();
  if (stateDir) expect(qemuPidsUnder(stateDir)).toEqual([]);
});

describe("GET /v1/vms/{id}/console", () => {
  it("replays the boot to a late client, then carries output and keys both ways", async () => {
    const console = await openTestSocket(manager.socket, "/v1/vms/web/console?replayBytes=262144");
    await console.waitForText("Reached target basic.target", { timeoutMs: 10_000 });
    const machine = daemonMachine("web");
    const seen = Buffer.concat(console.binary).length;
    await machine.succeed("echo from-the-guest > /dev/ttyS0");
    await console.waitForText("from-the-guest", { fromByte: seen });

    await machine.succeed("(timeout 30 head -n1 /dev/ttyS0 > /tmp/typed &)");
    await machine.succeed("sleep 0.5");
    console.socket.send("typed-on-the-console\r");
    await machine.waitUntilSucceeds("grep -qx typed-on-the-console /tmp/typed", {
      timeout: 20_000,
    });
    console.socket.close();
    expect((await console.closed).code).toBe(1005);
  });

  it("refuses a VM at rest with an error frame and 4409", async () => {
    const console = await openTestSocket(manager.socket, "/v1/vms/idle/console");
    expect(await console.waitFor((frame) => frame.type === "error")).toMatchObject({
      code: ErrorCodes.MACHINE_NOT_RUNNING,
      message: 'VM "idle" is created: its console needs it running (corral vm start idle)',
    });
    expect((await console.closed).code).toBe(4409);
  });
});
