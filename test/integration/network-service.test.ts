// The manager's NetworkService for real, inside namespaces the tests make: the default network
// chosen around the host's routes, networks made and refused, a VM's NICs (a namespace behind a
// veth with the NIC's MAC stands in for the guest, since a TAP carries nothing until QEMU opens
// it) getting their lease and names, port forwards, reconcile after damage, and cleanup.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { findDnsmasqProcess } from "../../src/host/dnsmasq.ts";
import { listCorralLinks, listLinks } from "../../src/host/links.ts";
import { hasCorralTable } from "../../src/host/nftables.ts";
import { NetworkService } from "../../src/manager/networks.ts";
import { linkAlias } from "../../src/network/link-names.ts";
import { newId } from "../../src/store/ids.ts";
import type { Store } from "../../src/store/store.ts";
import { canMakeNamespaces, connect, Netns, namespaces } from "../helpers/netns.ts";
import { newVm, temporaryStore } from "../helpers/store.ts";

const made: string[] = [];
afterAll(() => {
  expect(namespaces().filter((name) => made.includes(name))).toEqual([]);
});

async function netns(): Promise<Netns> {
  const ns = await Netns.create();
  made.push(ns.name);
  return ns;
}

/** A folder for the networks' dnsmasq files that dnsmasq, as "nobody", can read. */
function runDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "corral-networks-"));
  chmodSync(dir, 0o755);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A namespace with an uplink to a client namespace (192.0.2.1 ↔ 192.0.2.2). */
async function hostWithClient(): Promise<{ host: Netns; client: Netns }> {
  const host = await netns();
  const client = await netns();
  await connect(host, client, {
    nameA: "up0",
    nameB: "eth0",
    addressA: "192.0.2.1/24",
    addressB: "192.0.2.2/24",
  });
  return { host, client };
}

/** The guest stand-in: a namespace on the network's bridge with the NIC's MAC, given its lease. */
async function standIn(host: Netns, bridge: string, mac: string, dir: string): Promise<Netns> {
  const guest = await netns();
  const port = `vg${Math.floor(Math.random() * 1e6)}`;
  await connect(host, guest, { nameA: port, nameB: "eth0", macB: mac });
  await host.run("ip", ["link", "set", port, "master", bridge]);
  const script = join(dir, "udhcpc.sh");
  writeFileSync(
    script,
    '#!/bin/sh\n[ "$1" = bound ] && ip address add "$ip/$mask" dev "$interface" && ip route add default via "$router"\nexit 0\n',
    { mode: 0o755 },
  );
  const dhcp = guest.tryRun("busybox", [
    ...["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", script],
  ]);
  expect(dhcp.output).toMatch(/lease of [\d.]+ obtained/);
  return guest;
}

/** The service acting in `host`; deleting the namespace ends its dnsmasq and links with it. */
async function open(store: Store, host: Netns, dir: string): Promise<NetworkService> {
  const { service } = await NetworkService.open(store, { runDir: dir, netns: host.name });
  return service;
}

describe.skipIf(!canMakeNamespaces())("NetworkService, in namespaces", () => {
  it("chooses the default network around the host's routes, makes, refuses and deletes networks", async () => {
    await using host = await netns();
    const dir = runDir();
    const store = await temporaryStore();
    // The host already routes 10.213.0.0/24: corral0 must take another /24.
    await host.run("ip", ["link", "add", "uplink", "type", "bridge"]);
    await host.run("ip", ["address", "add", "10.213.0.1/24", "dev", "uplink"]);
    await host.run("ip", ["link", "set", "uplink", "up"]);
    const service = await open(store, host, dir);

    const [corral0] = await service.list();
    expect(corral0).toMatchObject({
      name: "corral0",
      subnet: "10.213.1.0/24",
      gateway: "10.213.1.1",
      nat: true,
      isolated: false,
      bridge: "crl-br-corral0",
      nics: 0,
    });
    expect(await findDnsmasqProcess(join(dir, "corral0"))).toBeDefined();

    await expect(service.create({ name: "lab", subnet: "10.213.0.0/25" })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("overlaps the host's route to 10.213.0.0/24 on uplink"),
    });
    await expect(service.create({ name: "lab", subnet: "10.213.1.0/24" })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining('overlaps network "corral0"'),
    });
    const lab = await service.create({ name: "lab", nat: false, isolated: true });
    expect(lab).toMatchObject({ subnet: "10.213.2.0/24", nat: false, isolated: true });
    await expect(service.create({ name: "lab" })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: 'a network named "lab" already exists',
    });
    expect((await listCorralLinks({ netns: host.name })).map((link) => link.name).sort()).toEqual([
      "crl-br-corral0",
      "crl-br-lab",
    ]);

    expect((await service.remove("lab")).name).toBe("lab");
    expect(await findDnsmasqProcess(join(dir, "lab"))).toBeUndefined();
    expect((await listCorralLinks({ netns: host.name })).map((link) => link.name)).toEqual([
      "crl-br-corral0",
    ]);
    await expect(service.get("lab")).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND });
  });

  it("gives a VM NICs with a lease and names, forwards ports to it and takes it off again", async () => {
    const { host, client } = await hostWithClient();
    await using _host = host;
    await using _client = client;
    const dir = runDir();
    const store = await temporaryStore();
    const service = await open(store, host, dir);
    await service.create({ name: "back", nat: false });
    const web = store.vms.create(newVm("web"));
    const db = store.vms.create(newVm("db"));

    const plans = await service.attachVm(web.id, ["corral0", "back"]);
    expect(plans.map((plan) => [plan.index, plan.network, plan.address, plan.gateway])).toEqual([
      [0, "corral0", "10.213.0.2", "10.213.0.1"],
      [1, "back", "10.213.1.2", "10.213.1.1"],
    ]);
    const [webNic] = plans;
    if (!webNic) throw new Error("no NIC");
    const taps = await listLinks({ netns: host.name });
    expect(taps.find((link) => link.name === webNic.tap)).toMatchObject({
      kind: "tun",
      master: "crl-br-corral0",
      owner: { kind: "tap", vmId: web.id, index: 0 },
    });
    expect(await service.prepareVm(web.id)).toEqual(plans);
    // Held down (a restored guest still has its snapshot's MACs), then up.
    const isUp = async () =>
      (await listLinks({ netns: host.name })).find((link) => link.name === webNic.tap)?.isUp;
    await service.prepareVm(web.id, { isUp: false });
    expect(await isUp()).toBe(false);
    await service.setLinksUp(web.id, true);
    expect(await isUp()).toBe(true);
    const [dbNic] = await service.attachVm(db.id, ["corral0"]);
    expect(dbNic?.address).toBe("10.213.0.3");

    // The guest stand-in gets the NIC's address by DHCP, and names resolve.
    const guest = await standIn(host, "crl-br-corral0", webNic.mac, dir);
    await using _guest = guest;
    expect(await guest.run("ip", ["-4", "-o", "address", "show", "dev", "eth0"])).toContain(
      "10.213.0.2/24",
    );
    for (const name of ["web.corral0", "web", "db.corral0"]) {
      expect(await guest.run("busybox", ["nslookup", name, "10.213.0.1"])).toMatch(
        name.startsWith("db") ? /Address: 10\.213\.0\.3/ : /Address: 10\.213\.0\.2/,
      );
    }

    // A port forward from the host's uplink address reaches the guest's server.
    const www = mkdtempSync(join(tmpdir(), "corral-www-"));
    onTestFinished(() => rmSync(www, { recursive: true, force: true }));
    writeFileSync(join(www, "index.html"), "web\n");
    guest.spawn("busybox", ["httpd", "-f", "-p", "8000", "-h", www]);
    const forward = await service.addPortForward(web.id, { hostPort: 8080, guestPort: 8000 });
    expect(forward).toMatchObject({
      vm: "web",
      hostAddress: "0.0.0.0",
      protocol: "tcp",
      guestAddress: "10.213.0.2",
      connections: 0,
    });
    const fetch = (ns: Netns, url: string) => ns.tryRun("curl", ["-sS", "-m", "5", url]).output;
    await expect.poll(() => fetch(client, "http://192.0.2.1:8080/")).toBe("web\n");
    expect(fetch(host, "http://127.0.0.1:8080/")).toBe("web\n");
    const [listed] = await service.listPortForwards(web.id);
    expect(listed?.connections).toBe(2);
    // Replacing the table (a new network) keeps the counters.
    await service.create({ name: "spare" });
    expect((await service.listPortForwards(web.id))[0]?.connections).toBe(2);
    expect((await service.get("corral0")).traffic.routed.rx.packets).toBeGreaterThan(0);

    // Taken ports: by corral's own forward, and by a listener on the host.
    await expect(
      service.addPortForward(db.id, { hostPort: 8080, guestPort: 80, hostAddress: "192.0.2.1" }),
    ).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining('already forwarded (tcp 0.0.0.0:8080 → VM "web" port 8000)'),
    });
    host.spawn("busybox", ["httpd", "-f", "-p", "127.0.0.1:9090", "-h", www]);
    await expect.poll(() => host.tryRun("ss", ["-Hltn", "sport = :9090"]).output).toContain("9090");
    await expect(
      service.addPortForward(db.id, { hostPort: 9090, guestPort: 80 }),
    ).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message:
        "tcp 0.0.0.0:9090 is taken on the host: something listens on 127.0.0.1:9090; choose another host port",
    });
    await expect(
      service.addPortForward(db.id, { hostPort: 9091, guestPort: 80, hostAddress: "192.0.2.99" }),
    ).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    await expect(
      service.addPortForward(db.id, { hostPort: 9091, guestPort: 80, network: "back" }),
    ).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: 'VM "db" has no NIC on network "back"',
    });

    expect((await service.removePortForward(web.id, 8080)).connections).toBe(2);
    expect(client.tryRun("curl", ["-sS", "-m", "3", "http://192.0.2.1:8080/"]).status).not.toBe(0);
    await expect(service.removePortForward(web.id, 8080)).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });

    const stats = await service.nicStats(web.id);
    expect(stats.map((nic) => [nic.index, nic.tap, nic.rx.bytes])).toEqual([
      [0, webNic.tap, 0],
      [1, plans[1]?.tap, 0],
    ]);

    await service.addPortForward(web.id, { hostPort: 8081, guestPort: 8000 });
    await service.detachVm(web.id);
    expect(store.nics.listByVm(web.id)).toEqual([]);
    expect(await service.listPortForwards()).toEqual([]);
    expect(store.portForwards.list()).toEqual([]);
    expect((await listLinks({ netns: host.name })).map((link) => link.name)).not.toContain(
      webNic.tap,
    );
    await expect
      .poll(() => guest.tryRun("busybox", ["nslookup", "web.corral0", "10.213.0.1"]).output)
      .not.toContain("10.213.0.2");
    // The address is free again, and so is its lease: the next VM's NIC gets it by DHCP.
    const [again] = await service.attachVm(store.vms.create(newVm("again")).id, ["corral0"]);
    expect(again?.address).toBe("10.213.0.2");
    await using next = await standIn(host, "crl-br-corral0", again?.mac ?? "", dir);
    expect(await next.run("ip", ["-4", "-o", "address", "show", "dev", "eth0"])).toContain(
      "10.213.0.2/24",
    );
  });

  it("reconciles the host with the store after damage, and cleans up only what is corral's", async () => {
    const { host, client } = await hostWithClient();
    await using _host = host;
    await using _client = client;
    const scope = { netns: host.name };
    const dir = runDir();
    const store = await temporaryStore();
    const service = await open(store, host, dir);
    const web = store.vms.create(newVm("web"));
    const [nic] = await service.attachVm(web.id, ["corral0"]);
    if (!nic) throw new Error("no NIC");
    await service.addPortForward(web.id, { hostPort: 8080, guestPort: 8000 });

    // Damage: the bridge (and so the TAP's place on it) gone under a running dnsmasq, the table
    // deleted; an orphan TAP marked as corral's; links and a table that are not corral's.
    await host.run("ip", ["link", "delete", "crl-br-corral0"]);
    await host.run("ip", ["link", "delete", nic.tap]);
    await host.run("nft", ["delete", "table", "inet", "corral"]);
    const orphanId = newId();
    const orphan = `crl-${orphanId.slice(-8).toLowerCase()}-0`;
    await host.run("ip", ["tuntap", "add", "dev", orphan, "mode", "tap"]);
    await host.run("ip", [
      "link",
      "set",
      orphan,
      "alias",
      linkAlias({ kind: "tap", vmId: orphanId, index: 0 }),
    ]);
    await host.run("ip", ["tuntap", "add", "dev", "crl-unmarked", "mode", "tap"]);
    await host.run("nft", ["add", "table", "ip", "foreign"]);

    const report = await service.reconcile();
    expect(report.ensured).toEqual(["crl-br-corral0", nic.tap]);
    expect(report.removed).toEqual([orphan]);
    expect(await hasCorralTable(scope)).toBe(true);
    expect(await findDnsmasqProcess(join(dir, "corral0"))).toBeDefined();
    expect((await listLinks(scope)).find((link) => link.name === nic.tap)?.master).toBe(
      "crl-br-corral0",
    );
    // The dnsmasq that ran on the old bridge serves the new one: a lease and names.
    const guest = await standIn(host, "crl-br-corral0", nic.mac, dir);
    await using _guest = guest;
    expect(await guest.run("busybox", ["nslookup", "web.corral0", "10.213.0.1"])).toMatch(
      /Address: 10\.213\.0\.2/,
    );
    const www = mkdtempSync(join(tmpdir(), "corral-www-"));
    onTestFinished(() => rmSync(www, { recursive: true, force: true }));
    writeFileSync(join(www, "index.html"), "web\n");
    guest.spawn("busybox", ["httpd", "-f", "-p", "8000", "-h", www]);
    await expect
      .poll(() => client.tryRun("curl", ["-sS", "-m", "5", "http://192.0.2.1:8080/"]).output)
      .toBe("web\n");

    const removed = await service.cleanup();
    expect(removed).toEqual([
      "dnsmasq of corral0",
      nic.tap,
      "crl-br-corral0",
      "nftables table inet corral",
    ]);
    expect(await listCorralLinks(scope)).toEqual([]);
    expect(await hasCorralTable(scope)).toBe(false);
    expect(await findDnsmasqProcess(join(dir, "corral0"))).toBeUndefined();
    expect((await listLinks(scope)).map((link) => link.name)).toContain("crl-unmarked");
    expect(await host.run("nft", ["list", "tables"])).toBe("table ip foreign\n");
    // The store still has it all: the next start makes it again.
    expect(store.nics.listByVm(web.id)).toHaveLength(1);
  });
});
