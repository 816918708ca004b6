// Growing a running QEMU VM: its size arguments (`-smp …,maxcpus=`, `-m …,slots=,maxmem=`), what
// it has and may grow to (read from QEMU itself), vCPUs plugged in where query-hotpluggable-cpus
// has room, memory as pc-dimm devices (ACPI memory hotplug), and the root disk's block_resize.

import type { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { ResizeTarget, VmSize } from "../backend.ts";
import type { QmpCommand } from "./qemu-state.ts";
import { QmpError } from "./qmp-client.ts";

/** An x86-64 Linux guest's memory block: it onlines hot-added memory in whole blocks only. */
export const MEMORY_STEP_MIB = 128;
/** QEMU's ACPI_MAX_RAM_SLOTS. */
const MAX_MEMORY_SLOTS = 256;
const MIB = 2 ** 20;
const GIB = 2 ** 30;
/** The id prefix of what corral plugs in, so that it can tell it from what the VM booted with. */
const ID_PREFIX = "corral-";

export interface SizeArgsOptions {
  cpus?: number | undefined;
  maxCpus?: number | undefined;
  memoryMiB?: number | undefined;
  maxMemoryMiB?: number | undefined;
}

/**
 * `-smp` and `-m` for the VM's size and headroom. QEMU merges repeated `-smp` and `-m` options
 * key by key, so these override a start script's own and leave what they do not name (a start
 * script's memory when only `maxMemoryMiB` is given). One memory slot per 128 MiB of `maxMemoryMiB`
 * (each resize plugs one DIMM of at least that), at most QEMU's 256.
 */
export function sizeArgs(options: SizeArgsOptions): string[] {
  const { cpus, maxCpus, memoryMiB, maxMemoryMiB } = options;
  const smp = [cpus && String(cpus), maxCpus && `maxcpus=${maxCpus}`].filter(Boolean);
  const slots = maxMemoryMiB
    ? Math.min(MAX_MEMORY_SLOTS, Math.max(1, Math.floor(maxMemoryMiB / MEMORY_STEP_MIB)))
    : 0;
  const memory = [
    memoryMiB && String(memoryMiB),
    maxMemoryMiB && `slots=${slots},maxmem=${maxMemoryMiB}M`,
  ].filter(Boolean);
  return [
    ...(smp.length > 0 ? ["-smp", smp.join(",")] : []),
    ...(memory.length > 0 ? ["-m", memory.join(",")] : []),
  ];
}

interface HotpluggableCpu {
  type: string;
  "vcpus-count": number;
  props: Record<string, number>;
  "qom-path"?: string;
}

interface BlockInfo {
  device: string;
  inserted?: {
    ro: boolean;
    "node-name": string;
    image: { "virtual-size": number };
  };
}

interface MemoryDevice {
  data: { id?: string };
}

/** What the VM has now and its limits, from QEMU. */
export async function querySize(qmp: QmpCommand, deadline: Deadline): Promise<VmSize> {
  const cpus = await qmp<unknown[]>(deadline, "query-cpus-fast");
  const slots = await hotpluggableCpus(qmp, deadline);
  const memory = await qmp<{ "base-memory": number; "plugged-memory"?: number }>(
    deadline,
    "query-memory-size-summary",
  );
  const limits = await qmp<{ size: number; "max-size"?: number }>(deadline, "qom-get", {
    path: "/machine",
    property: "memory",
  });
  const memoryBytes = memory["base-memory"] + (memory["plugged-memory"] ?? 0);
  const root = await rootDisk(qmp, deadline);
  return {
    cpus: cpus.length,
    maxCpus: slots ? slots.reduce((sum, slot) => sum + slot["vcpus-count"], 0) : cpus.length,
    memoryMiB: memoryBytes / MIB,
    maxMemoryMiB: Math.max(memoryBytes, limits["max-size"] ?? 0) / MIB,
    memoryStepMiB: MEMORY_STEP_MIB,
    diskBytes: root.inserted?.image["virtual-size"] ?? 0,
  };
}

/**
 * Plugs in vCPUs and memory and grows the root disk up to `target`, which the caller has checked
 * against querySize(): nothing here shrinks. A DIMM whose device QEMU refuses is taken out again.
 */
export async function hotplug(
  qmp: QmpCommand,
  deadline: Deadline,
  target: ResizeTarget,
): Promise<void> {
  if (target.cpus !== undefined) await plugCpus(qmp, deadline, target.cpus);
  if (target.memoryMiB !== undefined) await plugMemory(qmp, deadline, target.memoryMiB);
  if (target.diskGiB !== undefined) {
    const root = await rootDisk(qmp, deadline);
    const size = target.diskGiB * GIB;
    if (size > (root.inserted?.image["virtual-size"] ?? 0)) {
      await qmp(deadline, "block_resize", {
        ...(root.device ? { device: root.device } : { "node-name": root.inserted?.["node-name"] }),
        size,
      });
    }
  }
}

/** Whether corral has plugged vCPUs or memory into the VM since it started. */
export async function hasHotplugged(qmp: QmpCommand, deadline: Deadline): Promise<boolean> {
  const slots = (await hotpluggableCpus(qmp, deadline)) ?? [];
  const memory = await qmp<MemoryDevice[]>(deadline, "query-memory-devices");
  return (
    slots.some((slot) => slot["qom-path"]?.startsWith(`/machine/peripheral/${ID_PREFIX}`)) ||
    memory.some((device) => device.data.id?.startsWith(ID_PREFIX))
  );
}

async function plugCpus(qmp: QmpCommand, deadline: Deadline, cpus: number): Promise<void> {
  let present = (await qmp<unknown[]>(deadline, "query-cpus-fast")).length;
  const free = ((await hotpluggableCpus(qmp, deadline)) ?? [])
    .filter((slot) => slot["qom-path"] === undefined)
    .sort((a, b) => compareTopology(a.props, b.props));
  for (const slot of free) {
    if (present >= cpus) break;
    const id = `${ID_PREFIX}cpu-${TOPOLOGY.flatMap((key) => slot.props[key] ?? []).join("-")}`;
    await qmp(deadline, "device_add", { driver: slot.type, id, ...slot.props });
    present += slot["vcpus-count"];
  }
}

async function plugMemory(qmp: QmpCommand, deadline: Deadline, memoryMiB: number): Promise<void> {
  const summary = await qmp<{ "base-memory": number; "plugged-memory"?: number }>(
    deadline,
    "query-memory-size-summary",
  );
  const addedBytes = memoryMiB * MIB - summary["base-memory"] - (summary["plugged-memory"] ?? 0);
  if (addedBytes <= 0) return;
  const taken = new Set(
    (await qmp<MemoryDevice[]>(deadline, "query-memory-devices")).map((device) => device.data.id),
  );
  let n = taken.size;
  while (taken.has(`${ID_PREFIX}dimm-${n}`)) n++;
  const memdev = `${ID_PREFIX}mem-${n}`;
  await qmp(deadline, "object-add", {
    "qom-type": "memory-backend-ram",
    id: memdev,
    size: addedBytes,
  });
  try {
    await qmp(deadline, "device_add", { driver: "pc-dimm", id: `${ID_PREFIX}dimm-${n}`, memdev });
  } catch (error) {
    await qmp(deadline, "object-del", { id: memdev }).catch(() => undefined);
    throw error;
  }
}

/** The vCPU slots, plugged or not; undefined when the machine cannot hot-plug vCPUs. */
async function hotpluggableCpus(
  qmp: QmpCommand,
  deadline: Deadline,
): Promise<HotpluggableCpu[] | undefined> {
  try {
    return await qmp<HotpluggableCpu[]>(deadline, "query-hotpluggable-cpus");
  } catch (error) {
    if (error instanceof QmpError) return undefined;
    throw error;
  }
}

/** The root disk: corral's start scripts name its drive `root`; else the VM's one writable disk. */
async function rootDisk(qmp: QmpCommand, deadline: Deadline): Promise<BlockInfo> {
  const blocks = await qmp<BlockInfo[]>(deadline, "query-block");
  const named = blocks.find((block) => block.device === "root" && block.inserted);
  const writable = blocks.filter((block) => block.inserted && !block.inserted.ro);
  const root = named ?? (writable.length === 1 ? writable[0] : undefined);
  if (!root) {
    throw new CorralError(
      ErrorCodes.UNSUPPORTED,
      `cannot tell which disk is the root disk: no drive is named "root" and the VM has ${writable.length} writable disks (${writable.map((block) => block.device).join(", ") || "none"})`,
    );
  }
  return root;
}

const TOPOLOGY = ["node-id", "socket-id", "die-id", "core-id", "thread-id"];

function compareTopology(a: Record<string, number>, b: Record<string, number>): number {
  for (const key of TOPOLOGY) {
    const difference = (a[key] ?? 0) - (b[key] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}
