// Port forwards of a daemon without networks (`networks.mode: off`, as without root): QEMU hostfwd
// rules of the VM's user-mode NIC, through the same API. A forward reaches a server in the guest
// from 127.0.0.1 at once; removed, the port is refused; a port taken on the host (or by another
// forward) is 409; forwards come back with the VM's next start and go with the VM. Loopback only.

import { once } from "node:events";
import { type AddressInfo, createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import type { Machine } from "../../src/machine/machine.ts";
import { type ManagerDaemon, startManagerDaemon } from "../helpers/manager.ts";

let manager: ManagerDaemon;

/** A port of 127.0.0.1 that nothing listens on, as of now. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The body of http://127.0.0.1:port/, or the error of the connection. */
async function fetchText(port: number, timeoutMs = 10_000): Promise<string> {
  const answer = await fetch(`http://127.0.0.1:${port}/`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  return answer.text();
}

function machineOf(name: string): Machine {
  const machine = manager.daemon.manager.vms.machineOf(name);
  if (!machine) throw new Error(`VM ${name} has no machine`);
  return machine;
}

/**
 * busybox httpd on guest port 80 of VM `name`, serving `text`, once its user-mode NIC has its
 * address (udev may set it up after the shell answers; a start with forwards waits for it).
 */
async function serve(name: string, text: string): Promise<void> {
  const machine = machineOf(name);
  await machine.waitUntilSucceeds("ip -4 -o address show | grep -q ' 10.0.2.15/'", {
    timeout: 120_000,
  });
  await machine.succeed(
    `mkdir -p /tmp/www && echo ${text} > /tmp/www/index.html && busybox httpd -p 80 -h /tmp/www`,
  );
  await machine.waitForOpenPort(80, { timeout: 20_000 });
}

beforeAll(async () => {
  manager = await startManagerDaemon();
  const created = await manager.api("POST", "/v1/vms", { name: "web", cpus: 1, memoryMiB: 512 });
  expect(created.status, created.text).toBe(201);
  await serve("web", "web");
});

afterAll(async () => {
  await manager?.api("POST", "/v1/vms/web/stop", { force: true });
  await manager?.[Symbol.asyncDispose]();
});

describe("port forwards without networks (QEMU user-mode)", () => {
  it("forwards 127.0.0.1 to the guest at once; removed, the port is refused", async () => {
    const hostPort = await freePort();
    const added = await manager.api("POST", "/v1/vms/web/ports", {
      hostPort,
      guestPort: 80,
      hostAddress: "127.0.0.1",
    });
    expect(added.status, added.text).toBe(201);
    expect(added.json).toMatchObject({
      vm: "web",
      hostAddress: "127.0.0.1",
      hostPort,
      protocol: "tcp",
      guestAddress: "10.0.2.15",
      guestPort: 80,
      mode: "user",
      connections: null,
    });
    expect(await fetchText(hostPort)).toBe("web\n");
    expect((await manager.api("GET", "/v1/vms/web/ports")).json).toEqual([added.json]);

    const removed = await manager.api("DELETE", `/v1/vms/web/ports/${hostPort}`);
    expect(removed.status, removed.text).toBe(200);
    await expect(fetchText(hostPort, 3000)).rejects.toThrow();
    expect((await manager.api("GET", "/v1/vms/web/ports")).json).toEqual([]);
    expect((await manager.api("DELETE", `/v1/vms/web/ports/${hostPort}`)).json).toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
  });

  it("refuses a port taken on the host or forwarded already (409), and a network (503)", async () => {
    const server: Server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const busy = (server.address() as AddressInfo).port;
    try {
      const taken = await manager.api("POST", "/v1/vms/web/ports", {
        hostPort: busy,
        guestPort: 80,
      });
      expect(taken.status).toBe(409);
      expect(taken.json).toMatchObject({
        code: ErrorCodes.CONFLICT,
        message: `tcp 0.0.0.0:${busy} is taken on the host: something else listens there; choose another host port`,
      });
    } finally {
      server.close();
    }
    const hostPort = await freePort();
    const first = await manager.api("POST", "/v1/vms/web/ports", {
      hostPort,
      guestPort: 80,
      hostAddress: "127.0.0.1",
    });
    expect(first.status, first.text).toBe(201);
    const again = await manager.api("POST", "/v1/vms/web/ports", { hostPort, guestPort: 22 });
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: `tcp 0.0.0.0:${hostPort} is already forwarded (tcp 127.0.0.1:${hostPort} → VM "web" port 80): choose another host port or address`,
    });
    const onNetwork = await manager.api("POST", "/v1/vms/web/ports", {
      hostPort: await freePort(),
      guestPort: 80,
      network: "corral0",
    });
    expect(onNetwork.status).toBe(503);
    expect(await fetchText(hostPort)).toBe("web\n");
    expect((await manager.api("DELETE", `/v1/vms/web/ports/${hostPort}`)).status).toBe(200);
  });

  it("gives the VM its forwards again at its next start, those added while stopped too", async () => {
    const before = await freePort();
    const added = await manager.api("POST", "/v1/vms/web/ports", {
      hostPort: before,
      guestPort: 80,
      hostAddress: "127.0.0.1",
    });
    expect(added.status, added.text).toBe(201);
    const stopped = await manager.api("POST", "/v1/vms/web/stop", { force: true });
    expect(stopped.status, stopped.text).toBe(200);
    await expect(fetchText(before, 3000)).rejects.toThrow();

    const whileStopped = await freePort();
    const later = await manager.api("POST", "/v1/vms/web/ports", {
      hostPort: whileStopped,
      guestPort: 80,
      hostAddress: "127.0.0.1",
    });
    expect(later.status, later.text).toBe(201);
    const started = await manager.api("POST", "/v1/vms/web/start");
    expect(started.status, started.text).toBe(200);
    await serve("web", "again");
    expect(await fetchText(before)).toBe("again\n");
    expect(await fetchText(whileStopped)).toBe("again\n");
    expect(
      ((await manager.api("GET", "/v1/vms/web/ports")).json as { hostPort: number }[]).map(
        (forward) => forward.hostPort,
      ),
    ).toEqual([before, whileStopped]);
  });

  it("removes a VM's forwards with the VM", async () => {
    const hostPort = await freePort();
    const created = await manager.api("POST", "/v1/vms", { name: "gone", start: false });
    expect(created.status, created.text).toBe(201);
    const added = await manager.api("POST", "/v1/vms/gone/ports", {
      hostPort,
      guestPort: 80,
      hostAddress: "127.0.0.1",
    });
    expect(added.status, added.text).toBe(201);
    expect((await manager.api("DELETE", "/v1/vms/gone")).status).toBeLessThan(300);
    expect(
      manager.daemon.manager.store.portForwards.list().map((forward) => forward.hostPort),
    ).not.toContain(hostPort);
    // The port is free for another VM.
    const reused = await manager.api("POST", "/v1/vms/web/ports", {
      hostPort,
      guestPort: 80,
      hostAddress: "127.0.0.1",
    });
    expect(reused.status, reused.text).toBe(201);
    expect(await fetchText(hostPort)).toBe("again\n");
  });
});
