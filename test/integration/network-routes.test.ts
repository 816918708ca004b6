// /v1/networks over real HTTP on a daemon's unix socket, with a real NetworkService acting in a
// network namespace the test makes (the host's own links and tables are never touched).

import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { NetworkService } from "../../src/manager/networks.ts";
import { Store } from "../../src/store/store.ts";
import { http, startTestDaemon, type TestDaemon } from "../helpers/http.ts";
import { canMakeNamespaces, Netns, namespaces } from "../helpers/netns.ts";
import { newVm } from "../helpers/store.ts";

const enabled = canMakeNamespaces();
let scratch: string;
let host: Netns;
let store: Store;
let daemon: TestDaemon;
let socket: { socket: string };

beforeAll(async () => {
  if (!enabled) return;
  scratch = mkdtempSync(join(tmpdir(), "corral-network-api-"));
  chmodSync(scratch, 0o755);
  host = await Netns.create();
  store = await Store.open({ dir: join(scratch, "store") });
  const { service } = await NetworkService.open(store, {
    runDir: join(scratch, "run"),
    netns: host.name,
  });
  daemon = await startTestDaemon({ networks: service });
  socket = { socket: daemon.listening.socket };
});

afterAll(async () => {
  if (!enabled) return;
  await daemon?.[Symbol.asyncDispose]();
  store?.close();
  await host?.[Symbol.asyncDispose]();
  rmSync(scratch, { recursive: true, force: true });
  expect(namespaces()).not.toContain(host.name);
});

describe.skipIf(!enabled)("/v1/networks", () => {
  it("lists the default network with its traffic", async () => {
    const answer = await http(socket, { path: "/v1/networks" });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual([
      {
        id: expect.stringMatching(/^[0-9A-Z]{26}$/),
        name: "corral0",
        subnet: "10.213.0.0/24",
        gateway: "10.213.0.1",
        dhcpStart: "10.213.0.2",
        dhcpEnd: "10.213.0.254",
        nat: true,
        isolated: false,
        bridge: "crl-br-corral0",
        nics: 0,
        traffic: {
          rx: { bytes: 0, packets: 0, errors: 0, dropped: 0 },
          tx: { bytes: 0, packets: 0, errors: 0, dropped: 0 },
          routed: { rx: { bytes: 0, packets: 0 }, tx: { bytes: 0, packets: 0 } },
        },
        createdAt: expect.any(String),
      },
    ]);
  });

  it("creates a network (201, Location), refuses a taken name and an overlap (409), deletes it", async () => {
    const created = await http(socket, {
      method: "POST",
      path: "/v1/networks",
      body: { name: "lab", subnet: "172.30.9.0/24", isolated: true, nat: false },
    });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe("/v1/networks/lab");
    expect(created.json).toMatchObject({ name: "lab", gateway: "172.30.9.1", isolated: true });
    expect(await host.run("ip", ["-br", "link", "show", "crl-br-lab"])).toContain("crl-br-lab");

    const again = await http(socket, {
      method: "POST",
      path: "/v1/networks",
      body: { name: "lab" },
    });
    expect([again.status, (again.json as { code: string }).code]).toEqual([
      409,
      ErrorCodes.CONFLICT,
    ]);
    const overlap = await http(socket, {
      method: "POST",
      path: "/v1/networks",
      body: { name: "other", subnet: "172.30.0.0/16" },
    });
    expect(overlap.status).toBe(409);
    expect((overlap.json as { message: string }).message).toContain('overlaps network "lab"');
    const bad = await http(socket, {
      method: "POST",
      path: "/v1/networks",
      body: { name: "other", subnet: "172.30.10.0/24", gateway: "172.30.11.1" },
    });
    expect([bad.status, (bad.json as { code: string }).code]).toEqual([
      400,
      ErrorCodes.INVALID_ARGUMENT,
    ]);

    expect((await http(socket, { path: "/v1/networks/lab" })).status).toBe(200);
    const deleted = await http(socket, { method: "DELETE", path: "/v1/networks/lab" });
    expect([deleted.status, (deleted.json as { name: string }).name]).toEqual([200, "lab"]);
    expect((await http(socket, { path: "/v1/networks/lab" })).status).toBe(404);
    expect(host.tryRun("ip", ["link", "show", "crl-br-lab"]).status).not.toBe(0);
  });

  it("refuses to delete a network a VM uses (409 naming it)", async () => {
    await http(socket, { method: "POST", path: "/v1/networks", body: { name: "used" } });
    const vm = store.vms.create(newVm("web"));
    store.nics.allocate(vm.id, ["used"]);
    const answer = await http(socket, { method: "DELETE", path: "/v1/networks/used" });
    expect(answer.status).toBe(409);
    expect((answer.json as { message: string }).message).toBe(
      'network "used" is in use by VM "web": delete them first',
    );
    expect(
      ((await http(socket, { path: "/v1/networks/used" })).json as { nics: number }).nics,
    ).toBe(1);
  });
});
