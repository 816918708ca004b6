// The host side of the manager's networks, for real, inside network namespaces the tests make:
// bridges and TAPs, corral's nftables table, dnsmasq's DHCP and DNS, a port forward into a
// namespace standing in for a guest, NAT out of it, and link counters.

import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { ensureBridge, listBridges } from "../../src/host/bridge.ts";
import { ensureDnsmasq, findDnsmasqProcess, stopDnsmasq } from "../../src/host/dnsmasq.ts";
import { guestView, readLinkStats } from "../../src/host/link-stats.ts";
import { deleteLink, listCorralLinks, listLinks } from "../../src/host/links.ts";
import { findListener } from "../../src/host/listeners.ts";
import { setSysctl } from "../../src/host/net-scope.ts";
import {
  applyRuleset,
  deleteCorralTable,
  hasCorralTable,
  readCounters,
} from "../../src/host/nftables.ts";
import { listRoutes } from "../../src/host/routes.ts";
import { deleteTap, ensureTap, listTaps, setHairpin } from "../../src/host/tap.ts";
import { bridgeName, tapName } from "../../src/network/link-names.ts";
import {
  type FirewallPlan,
  forwardCounter,
  networkCounter,
  renderRuleset,
} from "../../src/network/nft-ruleset.ts";
import { newId } from "../../src/store/ids.ts";
import { canMakeNamespaces, connect, Netns, namespaces } from "../helpers/netns.ts";

const made: string[] = [];

/** A temporary folder dnsmasq (as "nobody") can read. */
function reachableDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}
afterAll(() => {
  // Every namespace a test made is gone, whatever happened in it.
  expect(namespaces().filter((name) => made.includes(name))).toEqual([]);
});

async function netns(): Promise<Netns> {
  const ns = await Netns.create();
  made.push(ns.name);
  return ns;
}

function tables(ns: Netns): Promise<string[]> {
  return ns
    .run("nft", ["-j", "list", "tables"])
    .then((text) =>
      (JSON.parse(text) as { nftables: { table?: { family: string; name: string } }[] }).nftables
        .filter((item) => item.table)
        .map((item) => `${item.table?.family} ${item.table?.name}`),
    );
}

/** A udhcpc script that puts the lease on the interface, and says so. */
function dhcpScript(dir: string): string {
  const path = join(dir, "udhcpc.sh");
  writeFileSync(
    path,
    '#!/bin/sh\n[ "$1" = bound ] && ip address add "$ip/$mask" dev "$interface" && ip route add default via "$router"\nexit 0\n',
    { mode: 0o755 },
  );
  return path;
}

describe.skipIf(!canMakeNamespaces())("networks on the host, in namespaces", () => {
  it("makes bridges and TAPs marked as corral's and deletes them, leaving other links alone", async () => {
    await using ns = await netns();
    const scope = { netns: ns.name };
    await ns.run("ip", ["link", "add", "crl-foreign", "type", "bridge"]);
    await ns.run("ip", ["link", "add", "br-other", "type", "bridge"]);
    const bridge = bridgeName("lab");
    const spec = {
      name: bridge,
      network: "lab",
      gateway: "10.77.0.1",
      prefix: 24,
      mac: "52:54:00:01:02:03",
    };
    await ensureBridge(spec, scope);
    await ensureBridge({ ...spec, gateway: "10.77.0.254" }, scope);
    const vmId = newId();
    const tap = tapName(vmId, 0);
    await ensureTap({ name: tap, bridge, vmId, index: 0 }, scope);
    await ensureTap({ name: tap, bridge, vmId, index: 0 }, scope);

    expect(
      (await listBridges(scope)).map((link) => [link.name, link.owner, link.mac, link.isUp]),
    ).toEqual([[bridge, { kind: "bridge", network: "lab" }, "52:54:00:01:02:03", true]]);
    expect(
      (await listTaps(scope)).map((link) => [link.name, link.kind, link.master, link.owner]),
    ).toEqual([[tap, "tun", bridge, { kind: "tap", vmId, index: 0 }]]);
    const addresses = await ns.run("ip", ["-4", "-o", "address", "show", "dev", bridge]);
    expect(addresses).toContain("10.77.0.254/24");
    expect(addresses).not.toContain("10.77.0.1/24");
    expect((await listRoutes(scope)).map((route) => route.destination)).toEqual(["10.77.0.0/24"]);
    expect((await ns.run("cat", [`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`])).trim()).toBe(
      "1",
    );
    expect((await ns.run("cat", [`/sys/class/net/${tap}/brport/hairpin_mode`])).trim()).toBe("1");

    expect(await deleteTap(tap, scope)).toBe(true);
    expect(await deleteTap(tap, scope)).toBe(false);
    expect(await deleteLink(bridge, scope)).toBe(true);
    expect(await listCorralLinks(scope)).toEqual([]);
    expect((await listLinks(scope)).map((link) => link.name).sort()).toEqual([
      "br-other",
      "crl-foreign",
      "lo",
    ]);
  });

  it("replaces corral's nftables table atomically, reads its counters and leaves other tables alone", async () => {
    await using ns = await netns();
    const scope = { netns: ns.name };
    await ns.run(
      "nft",
      ["-f", "-"],
      "table ip foreign {\n  chain input {\n    type filter hook input priority 0; policy accept;\n  }\n}\n",
    );
    const network = {
      name: "lab",
      bridge: "crl-br-lab",
      subnet: "10.77.0.0/24",
      nat: true,
      isolated: false,
    };
    const forward = {
      id: newId(),
      hostAddress: "0.0.0.0",
      hostPort: 8080,
      protocol: "tcp" as const,
      guestAddress: "10.77.0.5",
      guestPort: 80,
    };
    expect(await hasCorralTable(scope)).toBe(false);
    expect(await readCounters(scope)).toEqual(new Map());
    await applyRuleset(renderRuleset({ networks: [network], forwards: [forward] }), scope);
    expect([...(await readCounters(scope)).keys()].sort()).toEqual(
      [forwardCounter(forward.id), networkCounter("lab", "rx"), networkCounter("lab", "tx")].sort(),
    );

    const second = { ...forward, id: newId(), hostPort: 9090 };
    const plan: FirewallPlan = { networks: [network], forwards: [second] };
    await applyRuleset(renderRuleset(plan), scope);
    const counters = await readCounters(scope);
    expect(counters.has(forwardCounter(forward.id))).toBe(false);
    expect(counters.get(forwardCounter(second.id))).toEqual({ packets: 0, bytes: 0 });

    // nft refuses the whole script: the table stays as it was.
    const broken = renderRuleset({
      networks: [network],
      forwards: [{ ...second, guestAddress: "10.77.0.300" }],
    });
    await expect(applyRuleset(broken, scope)).rejects.toMatchObject({
      code: ErrorCodes.HOST_COMMAND_FAILED,
    });
    expect((await readCounters(scope)).has(forwardCounter(second.id))).toBe(true);
    expect(await tables(ns)).toEqual(["ip foreign", "inet corral"]);

    await deleteCorralTable(scope);
    await deleteCorralTable(scope);
    expect(await tables(ns)).toEqual(["ip foreign"]);
  });

  it("serves a static lease over DHCP and the VMs' names over DNS, re-read on SIGHUP", async () => {
    await using host = await netns();
    await using guest = await netns();
    const scope = { netns: host.name };
    const dir = reachableDir("corral-dnsmasq-");
    try {
      const bridge = "crl-br-lab";
      await ensureBridge(
        {
          name: bridge,
          network: "lab",
          gateway: "10.77.0.1",
          prefix: 24,
          mac: "52:54:00:01:02:03",
        },
        scope,
      );
      const mac = "52:54:00:aa:bb:01";
      await connect(host, guest, { nameA: "vg0", nameB: "eth0", macB: mac });
      await host.run("ip", ["link", "set", "vg0", "master", bridge]);
      const config = {
        network: "lab",
        bridge,
        gateway: "10.77.0.1",
        subnet: "10.77.0.0/24",
        dir: join(dir, "lab"),
        forwardDns: false,
      };
      const dnsmasq = await ensureDnsmasq(
        config,
        [{ mac, address: "10.77.0.5", name: "web" }],
        scope,
      );

      const dhcp = guest.tryRun("busybox", [
        ...["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1"],
        ...["-s", dhcpScript(dir)],
      ]);
      expect(dhcp.output).toContain("lease of 10.77.0.5 obtained");
      expect(await guest.run("ip", ["-4", "-o", "address", "show", "dev", "eth0"])).toContain(
        "10.77.0.5/24",
      );
      expect(readFileSync(join(config.dir, "leases"), "utf8")).toContain(`${mac} 10.77.0.5 web`);
      for (const name of ["web.lab", "web"]) {
        expect(await guest.run("busybox", ["nslookup", name, "10.77.0.1"])).toMatch(
          /Address: 10\.77\.0\.5/,
        );
      }
      expect(guest.tryRun("busybox", ["nslookup", "db.lab", "10.77.0.1"]).output).not.toContain(
        "10.77.0.6",
      );

      const hosts = [
        { mac, address: "10.77.0.5", name: "web" },
        { mac: "52:54:00:aa:bb:02", address: "10.77.0.6", name: "db" },
      ];
      const reloaded = await ensureDnsmasq(config, hosts, scope);
      expect(reloaded.pid).toBe(dnsmasq.pid);
      await expect
        .poll(() => guest.tryRun("busybox", ["nslookup", "db.lab", "10.77.0.1"]).output)
        .toContain("10.77.0.6");

      const restarted = await ensureDnsmasq({ ...config, leaseTimeS: 600 }, hosts, scope);
      expect(restarted.pid).not.toBe(dnsmasq.pid);
      expect(dnsmasq.hasExited || (await dnsmasq.exited) !== undefined).toBe(true);
      await stopDnsmasq(config.dir);
      expect(await findDnsmasqProcess(config.dir)).toBeUndefined();
      expect(restarted.hasExited).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a folder dnsmasq cannot reach once it is not root", async () => {
    const dir = mkdtempSync(join(tmpdir(), "corral-dnsmasq-"));
    try {
      const config = {
        network: "lab",
        bridge: "crl-br-lab",
        gateway: "10.77.0.1",
        subnet: "10.77.0.0/24",
        dir: join(dir, "lab"),
        forwardDns: false,
      };
      await expect(ensureDnsmasq(config, [])).rejects.toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining(`${dir} (mode 700) does not let others in`),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says why dnsmasq does not start", async () => {
    await using ns = await netns();
    const dir = reachableDir("corral-dnsmasq-");
    try {
      // No bridge with that address: dnsmasq cannot bind it.
      const config = {
        network: "lab",
        bridge: "crl-br-none",
        gateway: "10.77.0.1",
        subnet: "10.77.0.0/24",
        dir: join(dir, "lab"),
        forwardDns: false,
      };
      await expect(ensureDnsmasq(config, [], { netns: ns.name })).rejects.toThrow(
        /dnsmasq for network "lab" did not start on crl-br-none[\s\S]*\| .*dnsmasq/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("forwards a host port into a guest from outside, from the host's address and from 127.0.0.1; NATs the guest out", async () => {
    await using host = await netns();
    await using guest = await netns();
    await using client = await netns();
    const scope = { netns: host.name };
    const bridge = "crl-br-lab";
    await ensureBridge(
      { name: bridge, network: "lab", gateway: "10.77.0.1", prefix: 24, mac: "52:54:00:01:02:03" },
      scope,
    );
    // vg0 stands in for a VM's TAP: its counters are the host's side of the guest's wire.
    await connect(host, guest, { nameA: "vg0", nameB: "eth0", addressB: "10.77.0.5/24" });
    await host.run("ip", ["link", "set", "vg0", "master", bridge]);
    // As ensureTap leaves a TAP: the guest reaches its own forward (hairpin).
    await setHairpin("vg0", scope);
    await guest.run("ip", ["route", "add", "default", "via", "10.77.0.1"]);
    await connect(host, client, {
      nameA: "up0",
      nameB: "eth0",
      addressA: "192.0.2.1/24",
      addressB: "192.0.2.2/24",
    });
    // A second guest on the bridge, to reach the first through the host's forward (hairpin).
    await using neighbour = await netns();
    await connect(host, neighbour, { nameA: "vg1", nameB: "eth0", addressB: "10.77.0.6/24" });
    await host.run("ip", ["link", "set", "vg1", "master", bridge]);
    await neighbour.run("ip", ["route", "add", "default", "via", "10.77.0.1"]);
    await setSysctl(scope, "net.ipv4.ip_forward", "1");

    const www = mkdtempSync(join(tmpdir(), "corral-www-"));
    try {
      writeFileSync(join(www, "index.html"), "hello from the guest\n");
      guest.spawn("busybox", ["httpd", "-f", "-p", "8000", "-h", www]);
      client.spawn("busybox", ["httpd", "-f", "-p", "9000", "-h", www]);
      const forward = {
        id: newId(),
        hostAddress: "0.0.0.0",
        hostPort: 8080,
        protocol: "tcp" as const,
        guestAddress: "10.77.0.5",
        guestPort: 8000,
      };
      const network = { name: "lab", bridge, subnet: "10.77.0.0/24", nat: true, isolated: false };
      await applyRuleset(renderRuleset({ networks: [network], forwards: [forward] }), scope);
      const before = (await readLinkStats(["vg0"], scope)).get("vg0");

      const fetch = (ns: Netns, url: string) => ns.tryRun("curl", ["-sS", "-m", "5", url]);
      await expect
        .poll(() => fetch(client, "http://192.0.2.1:8080/").output)
        .toBe("hello from the guest\n");
      expect(fetch(host, "http://192.0.2.1:8080/").output).toBe("hello from the guest\n");
      expect(fetch(host, "http://127.0.0.1:8080/").output).toBe("hello from the guest\n");
      expect(fetch(neighbour, "http://10.77.0.1:8080/").output).toBe("hello from the guest\n");
      expect(fetch(guest, "http://10.77.0.1:8080/").output).toBe("hello from the guest\n");
      expect(fetch(guest, "http://192.0.2.1:8080/").output).toBe("hello from the guest\n");
      // The client has no route to 10.77.0.0/24: only a masqueraded request gets its answer.
      expect(fetch(guest, "http://192.0.2.2:9000/").output).toBe("hello from the guest\n");

      const counters = await readCounters(scope);
      expect(counters.get(forwardCounter(forward.id))?.packets).toBeGreaterThanOrEqual(4);
      expect(counters.get(networkCounter("lab", "tx"))?.packets).toBeGreaterThan(0);
      const after = (await readLinkStats(["vg0"], scope)).get("vg0");
      if (!before || !after) throw new Error("vg0 has no counters");
      // The guest received five answers of at least 21 bytes each; it sent five requests.
      expect(guestView(after).rx.bytes - guestView(before).rx.bytes).toBeGreaterThan(5 * 21);
      expect(guestView(after).tx.bytes).toBe(after.rx.bytes);

      // Without the forward nothing answers on 8080.
      await applyRuleset(renderRuleset({ networks: [network], forwards: [] }), scope);
      expect(fetch(client, "http://192.0.2.1:8080/").status).not.toBe(0);
    } finally {
      rmSync(www, { recursive: true, force: true });
    }
  });

  it("keeps an isolated network from other networks and the host, and a network without NAT in", async () => {
    await using host = await netns();
    await using open = await netns();
    await using closed = await netns();
    await using client = await netns();
    const scope = { netns: host.name };
    const networks = [
      { name: "open", subnet: "10.77.0.0/24", gateway: "10.77.0.1", guest: open },
      { name: "closed", subnet: "10.78.0.0/24", gateway: "10.78.0.1", guest: closed },
    ];
    for (const [i, network] of networks.entries()) {
      const bridge = bridgeName(network.name);
      await ensureBridge(
        {
          name: bridge,
          network: network.name,
          gateway: network.gateway,
          prefix: 24,
          mac: `52:54:00:01:02:0${i}`,
        },
        scope,
      );
      const guestAddress = network.gateway.replace(/1$/, "5");
      await connect(host, network.guest, {
        nameA: `vg${i}`,
        nameB: "eth0",
        addressB: `${guestAddress}/24`,
      });
      await host.run("ip", ["link", "set", `vg${i}`, "master", bridge]);
      await network.guest.run("ip", ["route", "add", "default", "via", network.gateway]);
    }
    await connect(host, client, {
      nameA: "up0",
      nameB: "eth0",
      addressA: "192.0.2.1/24",
      addressB: "192.0.2.2/24",
    });
    // The client knows the way to the open network: only the firewall can stop it.
    await client.run("ip", ["route", "add", "10.77.0.0/24", "via", "192.0.2.1"]);
    await setSysctl(scope, "net.ipv4.ip_forward", "1");
    const www = mkdtempSync(join(tmpdir(), "corral-www-"));
    try {
      writeFileSync(join(www, "index.html"), "up\n");
      for (const ns of [host, open, closed, client])
        ns.spawn("busybox", ["httpd", "-f", "-p", "8000", "-h", www]);
      const reaches = (ns: Netns, address: string) =>
        ns.tryRun("curl", ["-sS", "-m", "1", `http://${address}:8000/`]).output === "up\n";
      const rules = (isolated: boolean) =>
        renderRuleset({
          networks: [
            {
              name: "open",
              bridge: bridgeName("open"),
              subnet: "10.77.0.0/24",
              nat: true,
              isolated: false,
            },
            {
              name: "closed",
              bridge: bridgeName("closed"),
              subnet: "10.78.0.0/24",
              nat: !isolated,
              isolated,
            },
          ],
          forwards: [],
        });

      await applyRuleset(rules(false), scope);
      await expect.poll(() => reaches(open, "10.78.0.5")).toBe(true);
      expect(reaches(closed, "10.77.0.5")).toBe(true);
      expect(reaches(closed, "10.78.0.1")).toBe(true);
      expect(reaches(closed, "192.0.2.2")).toBe(true);

      await applyRuleset(rules(true), scope);
      expect(reaches(open, "10.78.0.5")).toBe(false);
      expect(reaches(closed, "10.77.0.5")).toBe(false);
      expect(reaches(closed, "10.78.0.1")).toBe(false);
      expect(reaches(closed, "10.77.0.1")).toBe(false);
      expect(reaches(closed, "192.0.2.2")).toBe(false);
      expect(reaches(client, "10.77.0.5")).toBe(false);
      // What stays allowed: the open network to the host and out, the host to the closed one.
      expect(reaches(open, "10.77.0.1")).toBe(true);
      expect(reaches(open, "192.0.2.2")).toBe(true);
      expect(reaches(host, "10.78.0.5")).toBe(true);
    } finally {
      rmSync(www, { recursive: true, force: true });
    }
  });

  it("finds listeners on a port, TCP and UDP, by address", async () => {
    await using ns = await netns();
    const scope = { netns: ns.name };
    ns.spawn("busybox", ["httpd", "-f", "-p", "127.0.0.1:7000"]);
    ns.spawn(process.execPath, ["-e", 'require("node:dgram").createSocket("udp4").bind(7001)']);
    const tcp = { hostAddress: "0.0.0.0", hostPort: 7000, protocol: "tcp" as const };
    await expect.poll(() => findListener(tcp, scope)).toBe("127.0.0.1:7000");
    expect(await findListener({ ...tcp, hostAddress: "127.0.0.1" }, scope)).toBe("127.0.0.1:7000");
    expect(await findListener({ ...tcp, hostAddress: "10.0.0.1" }, scope)).toBeUndefined();
    expect(await findListener({ ...tcp, protocol: "udp" }, scope)).toBeUndefined();
    await expect
      .poll(() =>
        findListener({ ...tcp, hostPort: 7001, protocol: "udp", hostAddress: "10.0.0.1" }, scope),
      )
      .toMatch(/:7001$/);
  });
});
