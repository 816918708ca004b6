// Growing a QEMU VM: the size arguments, and the QMP commands sent to a fake QEMU that answers
// the queries as QEMU 7.2 does on the `pc` machine (replies copied from a real one).

import { describe, expect, it } from "vitest";
import {
  hasHotplugged,
  hotplug,
  querySize,
  sizeArgs,
} from "../../../../src/backends/qemu/hotplug.ts";
import type { QmpCommand } from "../../../../src/backends/qemu/qemu-state.ts";
import { QmpError } from "../../../../src/backends/qemu/qmp-client.ts";
import { Deadline } from "../../../../src/deadline.ts";
import { ErrorCodes } from "../../../../src/errors.ts";

const MIB = 2 ** 20;

describe("sizeArgs", () => {
  it.each([
    [{}, []],
    [{ cpus: 2, memoryMiB: 1024 }, ["-smp", "2", "-m", "1024"]],
    [
      { cpus: 1, maxCpus: 2, memoryMiB: 512, maxMemoryMiB: 1024 },
      ["-smp", "1,maxcpus=2", "-m", "512,slots=8,maxmem=1024M"],
    ],
    // Only the headroom: QEMU merges it into the start script's own -smp and -m.
    [{ maxCpus: 4, maxMemoryMiB: 4096 }, ["-smp", "maxcpus=4", "-m", "slots=32,maxmem=4096M"]],
    [{ memoryMiB: 64, maxMemoryMiB: 100 }, ["-m", "64,slots=1,maxmem=100M"]],
    [{ maxMemoryMiB: 524_288 }, ["-m", "slots=256,maxmem=524288M"]],
  ])("%j → %j", (options, args) => {
    expect(sizeArgs(options)).toEqual(args);
  });
});

interface FakeQemu {
  qmp: QmpCommand;
  sent: { name: string; args: Record<string, unknown> | undefined }[];
}

/** QEMU 7.2 started with -smp 1,maxcpus=3 -m 512,slots=8,maxmem=1024M and one disk. */
function fakeQemu(options: { refuseDimm?: boolean; blocks?: unknown[] } = {}): FakeQemu {
  const sent: FakeQemu["sent"] = [];
  const slot = (core: number, plugged?: string) => ({
    props: { "core-id": core, "thread-id": 0, "node-id": 0, "socket-id": 0 },
    "vcpus-count": 1,
    type: "max-x86_64-cpu",
    ...(plugged ? { "qom-path": plugged } : {}),
  });
  const cpus = [slot(2), slot(1), slot(0, "/machine/unattached/device[0]")];
  const dimms: { type: string; data: { id: string; size: number } }[] = [];
  const blocks = options.blocks ?? [
    {
      device: "root",
      inserted: { ro: false, "node-name": "#block108", image: { "virtual-size": 2 * 2 ** 30 } },
    },
  ];
  const replies: Record<string, (args: Record<string, unknown>) => unknown> = {
    "query-cpus-fast": () => cpus.filter((cpu) => cpu["qom-path"]),
    "query-hotpluggable-cpus": () => cpus,
    "query-memory-size-summary": () => ({
      "base-memory": 512 * MIB,
      "plugged-memory": dimms.reduce((sum, dimm) => sum + dimm.data.size, 0),
    }),
    "query-memory-devices": () => dimms,
    "qom-get": () => ({ size: 512 * MIB, slots: 8, "max-size": 1024 * MIB }),
    "query-block": () => blocks,
    "object-add": () => ({}),
    "object-del": () => ({}),
    block_resize: () => ({}),
    device_add: (args) => {
      if (args.driver === "pc-dimm") {
        if (options.refuseDimm) throw new QmpError("device_add", "GenericError", "no free slots");
        dimms.push({ type: "dimm", data: { id: String(args.id), size: 256 * MIB } });
      } else {
        const target = cpus.find((cpu) => cpu.props["core-id"] === args["core-id"]);
        if (target) target["qom-path"] = `/machine/peripheral/${args.id}`;
      }
      return {};
    },
  };
  const qmp = (async (_deadline: Deadline, name: string, args?: Record<string, unknown>) => {
    sent.push({ name, args });
    const reply = replies[name];
    if (!reply)
      throw new QmpError(name, "CommandNotFound", `The command ${name} has not been found`);
    return reply(args ?? {});
  }) as QmpCommand;
  return { qmp, sent };
}

const deadline = () => new Deadline("resize", {}, 5_000);
const changes = (qemu: FakeQemu) =>
  qemu.sent.filter(({ name }) => !name.startsWith("query-") && name !== "qom-get");

describe("querySize", () => {
  it("reads the vCPUs, memory, limits and root disk from QEMU", async () => {
    expect(await querySize(fakeQemu().qmp, deadline())).toEqual({
      cpus: 1,
      maxCpus: 3,
      memoryMiB: 512,
      maxMemoryMiB: 1024,
      memoryStepMiB: 128,
      diskBytes: 2 * 2 ** 30,
    });
  });
});

describe("hotplug", () => {
  it("plugs vCPUs in topology order, memory as one DIMM, and grows the root drive", async () => {
    const qemu = fakeQemu();
    await hotplug(qemu.qmp, deadline(), { cpus: 3, memoryMiB: 768, diskGiB: 3 });
    expect(changes(qemu)).toEqual([
      {
        name: "device_add",
        args: {
          driver: "max-x86_64-cpu",
          id: "corral-cpu-0-0-1-0",
          "core-id": 1,
          "thread-id": 0,
          "node-id": 0,
          "socket-id": 0,
        },
      },
      {
        name: "device_add",
        args: {
          driver: "max-x86_64-cpu",
          id: "corral-cpu-0-0-2-0",
          "core-id": 2,
          "thread-id": 0,
          "node-id": 0,
          "socket-id": 0,
        },
      },
      {
        name: "object-add",
        args: { "qom-type": "memory-backend-ram", id: "corral-mem-0", size: 256 * MIB },
      },
      {
        name: "device_add",
        args: { driver: "pc-dimm", id: "corral-dimm-0", memdev: "corral-mem-0" },
      },
      { name: "block_resize", args: { device: "root", size: 3 * 2 ** 30 } },
    ]);
    expect(await hasHotplugged(qemu.qmp, deadline())).toBe(true);
    expect(await querySize(qemu.qmp, deadline())).toMatchObject({ cpus: 3, memoryMiB: 768 });
  });

  it("plugs nothing that is there already, and tells a VM it never touched", async () => {
    const qemu = fakeQemu();
    await hotplug(qemu.qmp, deadline(), { cpus: 1, memoryMiB: 512, diskGiB: 2 });
    expect(changes(qemu)).toEqual([]);
    expect(await hasHotplugged(qemu.qmp, deadline())).toBe(false);
  });

  it("takes the memory backend out again when QEMU refuses its DIMM", async () => {
    const qemu = fakeQemu({ refuseDimm: true });
    await expect(hotplug(qemu.qmp, deadline(), { memoryMiB: 768 })).rejects.toThrow(
      "QMP device_add: GenericError: no free slots",
    );
    expect(changes(qemu).map(({ name }) => name)).toEqual([
      "object-add",
      "device_add",
      "object-del",
    ]);
  });

  it("takes a VM's only writable disk as its root, and refuses to guess between several", async () => {
    const disk = (device: string, ro = false) => ({
      device,
      inserted: { ro, "node-name": `#${device}`, image: { "virtual-size": 2 ** 30 } },
    });
    const nixos = fakeQemu({ blocks: [disk("drive1"), disk("cdrom", true)] });
    await hotplug(nixos.qmp, deadline(), { diskGiB: 2 });
    expect(changes(nixos)).toEqual([
      { name: "block_resize", args: { device: "drive1", size: 2 * 2 ** 30 } },
    ]);
    const two = fakeQemu({ blocks: [disk("a"), disk("b")] });
    await expect(hotplug(two.qmp, deadline(), { diskGiB: 2 })).rejects.toMatchObject({
      code: ErrorCodes.UNSUPPORTED,
      message: expect.stringContaining(
        'no drive is named "root" and the VM has 2 writable disks (a, b)',
      ),
    });
  });
});
