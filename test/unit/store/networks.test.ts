import { Worker } from "node:worker_threads";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { Store } from "../../../src/store/store.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { newVm, temporaryStore } from "../../helpers/store.ts";

const lab = { name: "lab", subnet: "10.213.7.0/24", nat: true, isolated: false };

describe("networks", () => {
  it("records a network with its defaults: gateway, range, bridge and bridge MAC", async () => {
    const store = await temporaryStore();
    const network = store.networks.create(lab);
    expect(network).toMatchObject({
      name: "lab",
      subnet: "10.213.7.0/24",
      gateway: "10.213.7.1",
      dhcpStart: "10.213.7.2",
      dhcpEnd: "10.213.7.254",
      nat: true,
      isolated: false,
      bridge: "crl-br-lab",
    });
    expect(network.bridgeMac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(store.networks.get("lab")).toEqual(network);
    expect(store.networks.get(network.id)).toEqual(network);
    expect(store.networks.find("nothing")).toBeUndefined();
    expect(() => store.networks.get("nothing")).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
  });

  it("refuses a taken name, an overlapping subnet and bad fields", async () => {
    const store = await temporaryStore();
    store.networks.create(lab);
    expect(() => store.networks.create({ ...lab, subnet: "10.213.8.0/24" })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'a network named "lab" already exists',
      }),
    );
    expect(() => store.networks.create({ ...lab, name: "wide", subnet: "10.213.0.0/16" })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message:
          'subnet 10.213.0.0/16 overlaps network "lab" (10.213.7.0/24): choose another subnet',
      }),
    );
    expect(() => store.networks.create({ ...lab, name: "Lab_2", subnet: "10.1.0.0/24" })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining("network name"),
      }),
    );
    expect(() => store.networks.create({ ...lab, name: "other", subnet: "10.1.0.1/24" })).toThrow(
      /did you mean 10.1.0.0\/24/,
    );
    expect(() =>
      store.networks.create({
        ...lab,
        name: "other",
        subnet: "10.1.0.0/24",
        nat: "yes" as unknown as boolean,
      }),
    ).toThrow(/nat "yes" must be true or false/);
    expect(store.networks.list().map((network) => network.name)).toEqual(["lab"]);
  });

  it("cannot delete a network a VM uses, naming the VM; can once the VM is gone", async () => {
    const store = await temporaryStore();
    store.networks.create(lab);
    const vm = store.vms.create(newVm("web"));
    store.nics.allocate(vm.id, ["lab"]);
    expect(() => store.networks.remove("lab")).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: 'network "lab" is in use by VM "web": delete them first',
      }),
    );
    store.vms.remove(vm.id);
    expect(store.nics.list()).toEqual([]);
    expect(store.networks.remove("lab").name).toBe("lab");
    expect(() => store.networks.remove("lab")).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
  });
});

describe("NICs", () => {
  it("allocate the lowest free address, a new MAC and a TAP per network, in order", async () => {
    const store = await temporaryStore();
    store.networks.create(lab);
    store.networks.create({ ...lab, name: "back", subnet: "10.213.8.0/24", nat: false });
    const web = store.vms.create(newVm("web"));
    const db = store.vms.create(newVm("db"));
    const webNics = store.nics.allocate(web.id, ["lab", "back"]);
    expect(webNics.map((nic) => [nic.index, nic.network, nic.address, nic.tap])).toEqual([
      [0, "lab", "10.213.7.2", `crl-${web.id.slice(-8).toLowerCase()}-0`],
      [1, "back", "10.213.8.2", `crl-${web.id.slice(-8).toLowerCase()}-1`],
    ]);
    const [dbNic] = store.nics.allocate(db.id, ["lab"]);
    expect(dbNic?.address).toBe("10.213.7.3");
    const [later] = store.nics.allocate(web.id, ["lab"]);
    expect([later?.index, later?.address]).toEqual([2, "10.213.7.4"]);
    const macs = [...webNics, dbNic, later].map((nic) => nic?.mac);
    expect(new Set([...macs, ...store.networks.list().map((n) => n.bridgeMac)]).size).toBe(6);
    expect(store.nics.listByVm(web.id).map((nic) => nic.index)).toEqual([0, 1, 2]);
    expect(store.nics.list({ networkId: store.networks.get("back").id })).toEqual([webNics[1]]);
  });

  it("release addresses with their VM, and the lowest is taken again", async () => {
    const store = await temporaryStore();
    store.networks.create(lab);
    const first = store.vms.create(newVm("first"));
    const second = store.vms.create(newVm("second"));
    store.nics.allocate(first.id, ["lab"]);
    store.nics.allocate(second.id, ["lab"]);
    store.vms.remove(first.id);
    const third = store.vms.create(newVm("third"));
    expect(store.nics.allocate(third.id, ["lab"])[0]?.address).toBe("10.213.7.2");
    expect(store.nics.removeByVm(third.id).map((nic) => nic.address)).toEqual(["10.213.7.2"]);
    expect(store.nics.listByVm(third.id)).toEqual([]);
  });

  it("allocate all or nothing: a full or unknown network leaves no NIC behind", async () => {
    const store = await temporaryStore();
    store.networks.create(lab);
    store.networks.create({ ...lab, name: "tiny", subnet: "10.9.0.0/30" });
    const a = store.vms.create(newVm("a"));
    const b = store.vms.create(newVm("b"));
    store.nics.allocate(a.id, ["tiny"]);
    expect(() => store.nics.allocate(b.id, ["lab", "tiny"])).toThrow(
      expect.objectContaining({
        code: ErrorCodes.CONFLICT,
        message: expect.stringContaining('network "tiny" has no free address'),
      }),
    );
    expect(() => store.nics.allocate(b.id, ["lab", "nowhere"])).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
    expect(() => store.nics.allocate("01J00000000000000000000000", ["lab"])).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
    expect(() =>
      store.nics.allocate(
        b.id,
        Array.from({ length: 17 }, () => "lab"),
      ),
    ).toThrow(/more than 16 NICs/);
    expect(store.nics.listByVm(b.id)).toEqual([]);
  });

  it("never give two threads, each with its own connection, the same address", async () => {
    const dir = temporaryDir("corral-store-");
    const threads = 4;
    const perThread = 5;
    const vmIds: string[][] = [];
    {
      using store = await Store.open({ dir });
      store.networks.create({ ...lab, name: "contested" });
      for (let thread = 0; thread < threads; thread++) {
        vmIds.push(
          Array.from(
            { length: perThread },
            (_, i) => store.vms.create(newVm(`vm-${thread}-${i}`)).id,
          ),
        );
      }
    }
    const start = new SharedArrayBuffer(4);
    const ready: Promise<void>[] = [];
    const results: Promise<unknown>[] = [];
    for (const ids of vmIds) {
      const worker = new Worker(new URL("./allocate-nic-worker.ts", import.meta.url), {
        workerData: { dir, vmIds: ids, start },
      });
      onTestFinished(async () => {
        await worker.terminate();
      });
      const messages: unknown[] = [];
      ready.push(
        new Promise((resolve, reject) => {
          worker.once("error", reject);
          worker.once("message", () => resolve());
        }),
      );
      results.push(
        new Promise((resolve, reject) => {
          worker.on("message", (message) => messages.push(message));
          worker.once("error", reject);
          worker.once("exit", () => resolve(messages.at(-1)));
        }),
      );
    }
    await Promise.all(ready);
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    const outcomes = (await Promise.all(results)) as { addresses: string[] }[];
    const addresses = outcomes.flatMap((outcome) => outcome.addresses);
    expect(addresses).toHaveLength(threads * perThread);
    expect(new Set(addresses).size).toBe(threads * perThread);
    // The lowest ones, with no gap: each allocation saw every earlier one.
    expect(addresses.map((address) => Number(address.split(".")[3])).sort((x, y) => x - y)).toEqual(
      Array.from({ length: threads * perThread }, (_, i) => i + 2),
    );
  });
});

describe("port forwards", () => {
  async function setUp() {
    const store = await temporaryStore();
    store.networks.create(lab);
    const web = store.vms.create(newVm("web"));
    const db = store.vms.create(newVm("db"));
    const [webNic] = store.nics.allocate(web.id, ["lab"]);
    const [dbNic] = store.nics.allocate(db.id, ["lab"]);
    if (!webNic || !dbNic) throw new Error("no NIC");
    return { store, web, db, webNic, dbNic };
  }

  it("record a forward with its VM's name and guest address", async () => {
    const { store, web, webNic } = await setUp();
    const forward = store.portForwards.create({
      vmId: web.id,
      nicId: webNic.id,
      hostAddress: "0.0.0.0",
      hostPort: 8080,
      protocol: "tcp",
      guestPort: 80,
    });
    expect(forward).toMatchObject({
      vm: "web",
      guestAddress: "10.213.7.2",
      hostAddress: "0.0.0.0",
      hostPort: 8080,
      protocol: "tcp",
      guestPort: 80,
    });
    expect(store.portForwards.list({ vmId: web.id })).toEqual([forward]);
    expect(store.portForwards.remove(forward.id)).toEqual(forward);
    expect(store.portForwards.list()).toEqual([]);
  });

  it("refuse a forward whose packets another takes, naming it", async () => {
    const { store, web, db, webNic, dbNic } = await setUp();
    const base = {
      hostAddress: "10.0.0.5",
      hostPort: 8080,
      protocol: "tcp" as const,
      guestPort: 80,
    };
    store.portForwards.create({ ...base, vmId: web.id, nicId: webNic.id });
    for (const hostAddress of ["10.0.0.5", "0.0.0.0"]) {
      expect(() =>
        store.portForwards.create({ ...base, hostAddress, vmId: db.id, nicId: dbNic.id }),
      ).toThrow(
        expect.objectContaining({
          code: ErrorCodes.CONFLICT,
          message: `tcp ${hostAddress}:8080 is already forwarded (tcp 10.0.0.5:8080 → VM "web" port 80): choose another host port or address`,
        }),
      );
    }
    store.portForwards.create({ ...base, protocol: "udp", vmId: db.id, nicId: dbNic.id });
    store.portForwards.create({ ...base, hostAddress: "10.0.0.6", vmId: db.id, nicId: dbNic.id });
    expect(store.portForwards.list().map((f) => `${f.protocol} ${f.hostAddress} ${f.vm}`)).toEqual([
      "tcp 10.0.0.5 web",
      "udp 10.0.0.5 db",
      "tcp 10.0.0.6 db",
    ]);
  });

  it("refuse another VM's NIC and bad ports; go with their VM", async () => {
    const { store, web, dbNic, webNic } = await setUp();
    const base = {
      hostAddress: "0.0.0.0",
      hostPort: 2222,
      protocol: "tcp" as const,
      guestPort: 22,
    };
    expect(() => store.portForwards.create({ ...base, vmId: web.id, nicId: dbNic.id })).toThrow(
      expect.objectContaining({ code: ErrorCodes.NOT_FOUND }),
    );
    expect(() =>
      store.portForwards.create({ ...base, hostPort: 70000, vmId: web.id, nicId: webNic.id }),
    ).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    store.portForwards.create({ ...base, vmId: web.id, nicId: webNic.id });
    store.vms.remove(web.id);
    expect(store.portForwards.list()).toEqual([]);
  });

  it("record a forward of the user-mode NIC (no NIC row), sharing the ports with the others", async () => {
    const { store, web, db, dbNic } = await setUp();
    const base = {
      hostAddress: "127.0.0.1",
      hostPort: 8080,
      protocol: "tcp" as const,
      guestPort: 80,
    };
    const user = store.portForwards.create({ ...base, vmId: web.id, nicId: null });
    expect(user).toMatchObject({ vm: "web", nicId: null, guestAddress: "10.0.2.15" });
    expect(() =>
      store.portForwards.create({ ...base, hostAddress: "0.0.0.0", vmId: db.id, nicId: dbNic.id }),
    ).toThrow(expect.objectContaining({ code: ErrorCodes.CONFLICT }));
    expect(() =>
      store.portForwards.create({ ...base, hostPort: 8081, vmId: "01NOSUCHVM", nicId: null }),
    ).toThrow(expect.objectContaining({ code: ErrorCodes.NOT_FOUND }));
    store.vms.remove(web.id);
    expect(store.portForwards.list()).toEqual([]);
  });
});
