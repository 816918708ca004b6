// A running Cloud Hypervisor VM's operations over its API: pause and resume, the ACPI power
// button, snapshots (`vm.snapshot` into the snapshot folder, plus a frozen copy of the root
// disk's qcow2 layer) and resizing (`vm.resize` for vCPUs and memory, `vm.resize-disk`).

import { realpath } from "node:fs/promises";
import { join } from "node:path";
import type { Deadline } from "../../deadline.ts";
import { runProgram } from "../../host/run-program.ts";
import type { ResizeTarget, SavedState, VmSize } from "../backend.ts";
import type { MicroVmControl } from "../micro-vm.ts";
import { ROOT_LINK } from "../micro-vm-spec.ts";
import type { ChClient } from "./ch-client.ts";

/** Cloud Hypervisor's files in a snapshot folder; `state.json` is the manifest's `state`. */
export const CH_STATE_FILE = "state.json";
export const CH_DISK_FILE = "disk.qcow2";
/** What else `vm.snapshot` writes: the VM's config, and its RAM. */
export const CH_CONFIG_FILE = "config.json";
export const CH_MEMORY_FILE = "memory-ranges";
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The guest onlines hot-added memory in 128 MiB blocks (x86-64 Linux). */
const MEMORY_STEP_MIB = 128;

interface ImageInfo {
  filename: string;
  format: string;
  "virtual-size": number;
  "backing-filename"?: string;
}

export class ChControl implements MicroVmControl {
  readonly client: ChClient;
  readonly #stateDir: string;

  constructor(client: ChClient, stateDir: string) {
    this.client = client;
    this.#stateDir = stateDir;
  }

  async isPaused(deadline: Deadline): Promise<boolean> {
    return (await this.client.info(deadline)).state === "Paused";
  }

  pause(deadline: Deadline): Promise<void> {
    return this.client.pause(deadline);
  }

  resume(deadline: Deadline): Promise<void> {
    return this.client.resume(deadline);
  }

  requestShutdown(deadline: Deadline): Promise<void> {
    return this.client.powerButton(deadline);
  }

  /**
   * Pauses the VM, writes its state into `dir` (`vm.snapshot`: config.json, state.json and its
   * memory) and a copy of its root disk layer rebased onto the image, so that the snapshot
   * depends on nothing in the VM's folder. The VM goes on writing to its own overlay:
   * Cloud Hypervisor cannot switch a running disk to a new layer, so `nextOverlay` is not used.
   */
  async saveState(deadline: Deadline, dir: string, _nextOverlay: string): Promise<SavedState> {
    await this.pause(deadline);
    await this.client.snapshot(deadline, { destination_url: `file://${dir}` });
    const disk = await realpath(join(this.#stateDir, ROOT_LINK));
    const copy = join(dir, CH_DISK_FILE);
    await runProgram("cp", ["--reflink=auto", "--sparse=always", disk, copy]);
    await rebaseOntoImage(copy);
    return {
      state: CH_STATE_FILE,
      disk: CH_DISK_FILE,
      extraFiles: [{ file: CH_CONFIG_FILE }, { file: CH_MEMORY_FILE, isSparse: true }],
    };
  }

  async size(deadline: Deadline): Promise<VmSize> {
    const { config, memory_actual_size } = await this.client.info(deadline);
    const memory = config.memory ?? { size: 0 };
    const memoryMiB = Math.round((memory_actual_size ?? memory.size) / MiB);
    const disk = await diskInfo(await realpath(join(this.#stateDir, ROOT_LINK)));
    return {
      cpus: config.cpus?.boot_vcpus ?? 1,
      maxCpus: config.cpus?.max_vcpus ?? 1,
      memoryMiB,
      maxMemoryMiB: Math.round((memory.size + (memory.hotplug_size ?? 0)) / MiB),
      memoryStepMiB: MEMORY_STEP_MIB,
      diskBytes: disk[0]?.["virtual-size"] ?? 0,
    };
  }

  async resize(deadline: Deadline, target: ResizeTarget): Promise<void> {
    if (target.cpus !== undefined || target.memoryMiB !== undefined) {
      await this.client.resize(deadline, {
        ...(target.cpus !== undefined ? { desired_vcpus: target.cpus } : {}),
        ...(target.memoryMiB !== undefined ? { desired_ram: target.memoryMiB * MiB } : {}),
      });
    }
    if (target.diskGiB !== undefined) {
      await this.client.resizeDisk(deadline, { id: "root", desired_size: target.diskGiB * GiB });
    }
  }

  close(): void {
    this.client.close();
  }
}

/** The backing chain of the qcow2 at `path`, itself first. */
async function diskInfo(path: string): Promise<ImageInfo[]> {
  const { stdout } = await runProgram("qemu-img", [
    ...["info", "-U", "--backing-chain", "--output=json", path],
  ]);
  const parsed = JSON.parse(stdout) as ImageInfo | ImageInfo[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** Makes the copied layer back onto the bottom of its chain, merging the layers in between. */
async function rebaseOntoImage(copy: string): Promise<void> {
  const chain = await diskInfo(copy);
  const base = chain.at(-1);
  if (chain.length <= 2 || !base) return;
  await runProgram("qemu-img", [
    ...["rebase", "-q", "-U", "-f", "qcow2", "-b", base.filename, "-F", base.format, copy],
  ]);
}
