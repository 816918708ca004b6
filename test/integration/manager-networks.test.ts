// The manager's VMs on its bridged networks, for real: the daemon runs inside a network namespace
// the test makes (with a second one standing in for the world, behind a veth), boots real VMs on
// corral0 and on an isolated network, and the guests talk to each other by name, out through NAT
// and in through port forwards. Then the daemon is killed and started again, and finally
// `corral serve --cleanup-network` must leave nothing of corral's in the namespace. The VMs are
// shared by the cases, in order; the namespaces go whatever happens.

import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import { CLI } from "../helpers/cli.ts";
import { canMakeNamespaces, connect, Netns, namespaces } from "../helpers/netns.ts";
import { NetnsDaemon } from "../helpers/netns-daemon.ts";

interface VmView {
  id: string;
  name: string;
  state: string;
  nics: { index: number; network: string; mac: string; address: string }[];
}

interface NicStats {
  address: string;
  rx: { bytes: number; packets: number };
  tx: { bytes: number; packets: number };
}

/** The world's address, outside every VM's subnet; the host is 192.0.2.1 on that link. */
const WORLD = "192.0.2.2";
const HOST = "192.0.2.1";
const BLOB_MIB = 8;

let host: Netns | undefined;
let world: Netns | undefined;
let dir: string;
let daemon: NetnsDaemon;
const made: string[] = [];
/** Each VM's address on its first network. */
const address: Record<string, string> = {};

beforeAll(async () => {
  if (!canMakeNamespaces()) return;
  dir = mkdtempSync(join(tmpdir(), "corral-netvms-"));
  // dnsmasq reads its files as "nobody": every folder above them must let others in.
  chmodSync(dir, 0o755);
  host = await Netns.create();
  world = await Netns.create();
  made.push(host.name, world.name);
  await connect(host, world, {
    nameA: "up0",
    nameB: "eth0",
    addressA: `${HOST}/24`,
    addressB: `${WORLD}/24`,
  });
  // The world serves a page; it has no route to the VMs' subnets, so only NAT can reach it.
  const www = join(dir, "world-www");
  mkdirSync(www);
  writeFileSync(join(www, "index.html"), "world\n");
  chmodSync(www, 0o755);
  world.spawn("busybox", ["httpd", "-f", "-p", "8000", "-h", www]);
  daemon = new NetnsDaemon(host, dir);
  await daemon.start();
});

afterAll(async () => {
  await daemon?.stop("SIGKILL").catch(() => undefined);
  // Disposing a namespace kills what runs in it: the VMs, dnsmasq, the servers.
  await world?.[Symbol.asyncDispose]();
  await host?.[Symbol.asyncDispose]();
  if (dir) rmSync(dir, { recursive: true, force: true });
  expect(namespaces().filter((name) => made.includes(name))).toEqual([]);
});

async function createVm(body: Record<string, unknown>): Promise<VmView> {
  const answer = await daemon.api("POST", "/v1/vms", { cpus: 1, memoryMiB: 512, ...body });
  expect(answer.status, answer.text).toBe(201);
  const vm = answer.json as VmView;
  address[vm.name] = vm.nics[0]?.address ?? "";
  return vm;
}

async function nicStats(vm: string): Promise<NicStats> {
  const answer = await daemon.api("GET", `/v1/vms/${vm}/stats`);
  return (answer.json as { nics: NicStats[] }).nics[0] as NicStats;
}

/** curl from a namespace: the body, or "" when it cannot connect. */
function fetchIn(ns: Netns, url: string): string {
  const { status, output } = ns.tryRun("curl", ["-sS", "-m", "5", url]);
  return status === 0 ? output : "";
}

describe.skipIf(!canMakeNamespaces())("VMs on the manager's networks, in a namespace", () => {
  it("gives two VMs on corral0 addresses by DHCP and names they reach each other by", async () => {
    const web = await createVm({ name: "web" });
    const db = await createVm({ name: "db" });
    expect(web.nics).toEqual([
      {
        index: 0,
        network: "corral0",
        mac: expect.stringMatching(/^52:54:00:/),
        address: "10.213.0.2",
      },
    ]);
    expect(db.nics[0]?.address).toBe("10.213.0.3");
    expect(await daemon.succeed("web", "ip -4 -br address show dev eth1")).toContain(
      "10.213.0.2/24",
    );

    await daemon.succeed(
      "db",
      `mkdir -p /tmp/www && echo db > /tmp/www/index.html && head -c ${BLOB_MIB}M /dev/urandom > /tmp/www/blob && busybox httpd -p 80 -h /tmp/www`,
    );
    expect(await daemon.succeed("web", "ping -c 1 -W 5 db")).toContain("1 received");
    expect(await daemon.succeed("web", "getent hosts db.corral0")).toMatch(/^10\.213\.0\.3\s/);
    expect(await daemon.succeed("web", "curl -sS -m 10 http://db/")).toBe("db\n");
    expect(
      await daemon.succeed(
        "db",
        "curl -sS -m 10 -o /dev/null -w '%{http_code}' http://db.corral0/",
      ),
    ).toBe("200");
  });

  it("keeps a VM on an isolated network from them, and them from it", async () => {
    const lab = await daemon.api("POST", "/v1/networks", { name: "lab", isolated: true });
    expect(lab.status, lab.text).toBe(201);
    const iso = await createVm({ name: "iso", networks: ["lab"] });
    expect(iso.nics).toMatchObject([{ network: "lab", address: "10.213.1.2" }]);
    // It has its lease and its own network's DNS, nothing of the others'.
    expect(await daemon.succeed("iso", "getent hosts iso.lab")).toMatch(/^10\.213\.1\.2\s/);
    expect((await daemon.exec("iso", "getent hosts db")).exitCode).not.toBe(0);
    expect((await daemon.exec("iso", `ping -c 1 -W 2 ${address.db}`)).exitCode).not.toBe(0);
    expect((await daemon.exec("iso", `curl -sS -m 5 http://${address.db}/`)).exitCode).not.toBe(0);
    expect((await daemon.exec("web", `ping -c 1 -W 2 ${address.iso}`)).exitCode).not.toBe(0);
    // A VM on a network that is not isolated is still reachable from its own: the drop is lab's.
    expect(await daemon.succeed("web", `ping -c 1 -W 5 ${address.db}`)).toContain("1 received");
  });

  it("lets VMs reach the world through NAT, and an isolated one not the host", async () => {
    expect(await daemon.succeed("web", `curl -sS -m 10 http://${WORLD}:8000/`)).toBe("world\n");
    // lab has NAT (its default) too: isolated keeps it from other networks and the host, not
    // from the world.
    expect(await daemon.succeed("iso", `curl -sS -m 10 http://${WORLD}:8000/`)).toBe("world\n");
    expect(await daemon.succeed("web", "ping -c 1 -W 5 10.213.0.1")).toContain("1 received");
    expect((await daemon.exec("iso", "ping -c 1 -W 2 10.213.1.1")).exitCode).not.toBe(0);
  });

  it("forwards host ports to a VM, refuses taken ones, and stops when the forward goes", async () => {
    const h = host as Netns;
    const w = world as Netns;
    await daemon.succeed(
      "web",
      "mkdir -p /tmp/www && echo web > /tmp/www/index.html && busybox httpd -p 80 -h /tmp/www",
    );
    const added = await daemon.api("POST", "/v1/vms/web/ports", { hostPort: 8080, guestPort: 80 });
    expect(added.status, added.text).toBe(201);
    expect(added.json).toMatchObject({
      vm: "web",
      hostAddress: "0.0.0.0",
      hostPort: 8080,
      protocol: "tcp",
      guestAddress: address.web,
      guestPort: 80,
    });
    expect(fetchIn(w, `http://${HOST}:8080/`)).toBe("web\n");
    expect(fetchIn(h, `http://${HOST}:8080/`)).toBe("web\n");
    expect(fetchIn(h, "http://127.0.0.1:8080/")).toBe("web\n");
    // The VM reaches its own forward through the host (hairpin: its TAP is in hairpin mode).
    expect(await daemon.succeed("web", `curl -sS -m 10 http://${HOST}:8080/`)).toBe("web\n");
    const listed = await daemon.api("GET", "/v1/vms/web/ports");
    expect((listed.json as { connections: number }[])[0]?.connections).toBeGreaterThanOrEqual(4);

    // Taken: by corral's own forward, and by a listener in the namespace.
    const again = await daemon.api("POST", "/v1/vms/db/ports", { hostPort: 8080, guestPort: 80 });
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ code: ErrorCodes.CONFLICT });
    h.spawn("busybox", ["httpd", "-f", "-p", "9090", "-h", dir]);
    await expect.poll(() => h.tryRun("ss", ["-Hltn", "sport = :9090"]).output).toContain("9090");
    const listening = await daemon.api("POST", "/v1/vms/db/ports", {
      hostPort: 9090,
      guestPort: 80,
    });
    expect(listening.status).toBe(409);
    expect(listening.text).toContain("something listens");

    const removed = await daemon.api("DELETE", "/v1/vms/web/ports/8080");
    expect(removed.status, removed.text).toBe(200);
    expect(fetchIn(w, `http://${HOST}:8080/`)).toBe("");
    expect(fetchIn(h, "http://127.0.0.1:8080/")).toBe("");
    // Forwarded again, for the restart below.
    expect(
      (await daemon.api("POST", "/v1/vms/web/ports", { hostPort: 8080, guestPort: 80 })).status,
    ).toBe(201);
    expect(fetchIn(w, `http://${HOST}:8080/`)).toBe("web\n");
  });

  it("counts a known transfer on each NIC, in the right direction", async () => {
    const [webBefore, dbBefore] = [await nicStats("web"), await nicStats("db")];
    const networkBefore = (await daemon.api("GET", "/v1/networks/corral0")).json as {
      traffic: { rx: { bytes: number } };
    };
    const size = await daemon.succeed(
      "web",
      "curl -sS -m 60 -o /dev/null -w '%{size_download}' http://db/blob",
      90_000,
    );
    const bytes = BLOB_MIB * 2 ** 20;
    expect(Number(size)).toBe(bytes);
    const [webAfter, dbAfter] = [await nicStats("web"), await nicStats("db")];
    expect(webAfter.rx.bytes - webBefore.rx.bytes).toBeGreaterThanOrEqual(bytes);
    expect(dbAfter.tx.bytes - dbBefore.tx.bytes).toBeGreaterThanOrEqual(bytes);
    // The other way went only the requests and acknowledgements.
    expect(webAfter.tx.bytes - webBefore.tx.bytes).toBeLessThan(bytes / 4);
    expect(dbAfter.rx.bytes - dbBefore.rx.bytes).toBeLessThan(bytes / 4);
    const networkAfter = (await daemon.api("GET", "/v1/networks/corral0")).json as {
      traffic: { rx: { bytes: number } };
    };
    expect(networkAfter.traffic.rx.bytes - networkBefore.traffic.rx.bytes).toBeGreaterThanOrEqual(
      bytes,
    );
  });

  it("gives a clone its own MAC and address, and leaves its snapshot's VM reachable", async () => {
    const snapshot = await daemon.api("POST", "/v1/vms/db/snapshots", { name: "serving" });
    expect(snapshot.status, snapshot.text).toBe(201);
    const db = (await daemon.api("GET", "/v1/vms/db")).json as VmView;
    const clone = await createVm({
      name: "db2",
      fromSnapshot: (snapshot.json as { id: string }).id,
    });
    expect(clone.nics[0]?.mac).not.toBe(db.nics[0]?.mac);
    expect(clone.nics[0]?.address).toBe("10.213.0.4");
    expect(await daemon.succeed("db2", "cat /sys/class/net/eth1/address")).toBe(
      `${clone.nics[0]?.mac}\n`,
    );
    expect(await daemon.succeed("db2", "ip -4 -br address show dev eth1")).toContain(
      "10.213.0.4/24",
    );
    // The clone's httpd came with the snapshot; both answer, each at its own address.
    expect(await daemon.succeed("web", "curl -sS -m 10 http://db2/")).toBe("db\n");
    expect(await daemon.succeed("web", "curl -sS -m 10 http://db/")).toBe("db\n");
    expect(await daemon.succeed("web", "getent hosts db2")).toMatch(/^10\.213\.0\.4\s/);
  });

  it("keeps leases, forwards and connectivity when the daemon is killed and started again", async () => {
    const w = world as Netns;
    const before = (await daemon.api("GET", "/v1/vms")).json as VmView[];
    await daemon.stop("SIGKILL");
    // The VMs, dnsmasq and the rules run on without it.
    expect(fetchIn(w, `http://${HOST}:8080/`)).toBe("web\n");
    await daemon.start();
    const after = (await daemon.api("GET", "/v1/vms")).json as VmView[];
    expect(after.map((vm) => [vm.name, vm.state, vm.nics])).toEqual(
      before.map((vm) => [vm.name, "running", vm.nics]),
    );
    const forwards = (await daemon.api("GET", "/v1/vms/web/ports")).json as { hostPort: number }[];
    expect(forwards.map((f) => f.hostPort)).toEqual([8080]);
    expect(fetchIn(w, `http://${HOST}:8080/`)).toBe("web\n");
    // A lease renewed with the new daemon: the same address, and the names still answer.
    const leases = readFileSync(join(daemon.config.networks.runDir, "corral0", "leases"), "utf8");
    expect(leases).toContain(address.web);
    await daemon.succeed(
      "web",
      "rm /run/corral-dhcp/eth1 && systemctl restart corral-dhcp@eth1.service",
    );
    expect(
      await daemon.succeed("web", `/usr/local/lib/corral/nic-setup wait 60 ${address.web}`),
    ).toBe(`eth1 ${address.web}/24\n`);
    expect(await daemon.succeed("web", "curl -sS -m 10 http://db/")).toBe("db\n");
  });

  it("deletes a VM with its NIC and forward, and cleans up everything with --cleanup-network", async () => {
    const h = host as Netns;
    const { tap } = (await nicStats("web")) as NicStats & { tap: string };
    expect(await h.run("ip", ["-br", "link"])).toContain(tap);
    expect((await daemon.api("DELETE", "/v1/vms/web")).status).toBe(204);
    expect(fetchIn(world as Netns, `http://${HOST}:8080/`)).toBe("");
    expect(await h.run("ip", ["-br", "link"])).not.toContain(tap);
    expect(
      readFileSync(join(daemon.config.networks.runDir, "corral0", "hosts"), "utf8"),
    ).not.toContain("web");
    await daemon.stop("SIGTERM");
    const cleanup = h.tryRun(process.execPath, [
      ...[CLI, "serve", "--cleanup-network"],
      ...[
        "--state-dir",
        daemon.config.stateDir,
        "--network-run-dir",
        daemon.config.networks.runDir,
      ],
    ]);
    expect(cleanup.status, cleanup.output).toBe(0);
    expect(cleanup.output).toContain("removed crl-br-corral0");
    const links = JSON.parse(await h.run("ip", ["-j", "link"])) as { ifname: string }[];
    expect(links.map((link) => link.ifname).filter((name) => name.startsWith("crl-"))).toEqual([]);
    const ruleset = await h.run("nft", ["-j", "list", "ruleset"]);
    expect(ruleset).not.toContain('"corral"');
    const pids = await h.run("ip", ["netns", "pids", h.name]);
    const commands = pids
      .split("\n")
      .filter(Boolean)
      .map((pid) => spawnSync("cat", [`/proc/${pid}/comm`], { encoding: "utf8" }).stdout.trim());
    expect(commands).not.toContain("dnsmasq");
  });
});
