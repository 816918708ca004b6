// A running Firecracker VM's operations over its API: pause and resume (`PATCH /vm`), the guest's
// Ctrl+Alt+Del, and full snapshots (`PUT /snapshot/create` of the paused VM, plus a copy of its
// raw root disk, which Firecracker does not save).

import { realpath } from "node:fs/promises";
import { join } from "node:path";
import type { Deadline } from "../../deadline.ts";
import { runProgram } from "../../host/run-program.ts";
import type { SavedState } from "../backend.ts";
import type { MicroVmControl } from "../micro-vm.ts";
import { ROOT_LINK } from "../micro-vm-spec.ts";
import type { FcClient } from "./fc-client.ts";

/** The snapshot folder's files: the VM state (the manifest's `state`), memory, and the disk. */
export const FC_STATE_FILE = "vmstate";
export const FC_MEMORY_FILE = "memory";
export const FC_DISK_FILE = "disk.raw";

export class FcControl implements MicroVmControl {
  readonly client: FcClient;
  readonly #stateDir: string;

  constructor(client: FcClient, stateDir: string) {
    this.client = client;
    this.#stateDir = stateDir;
  }

  async isPaused(deadline: Deadline): Promise<boolean> {
    return (await this.client.describeInstance(deadline)).state === "Paused";
  }

  pause(deadline: Deadline): Promise<void> {
    return this.client.setVmState(deadline, "Paused");
  }

  resume(deadline: Deadline): Promise<void> {
    return this.client.setVmState(deadline, "Resumed");
  }

  /** Ctrl+Alt+Del: with `reboot=k` the guest's reboot ends Firecracker. */
  requestShutdown(deadline: Deadline): Promise<void> {
    return this.client.action(deadline, "SendCtrlAltDel");
  }

  /**
   * Pauses the VM and writes a full snapshot into `dir`, and a copy of the root disk as it is
   * now (a reflink where the filesystem has them). The VM goes on writing to its own disk, so
   * `nextOverlay` is not used: Firecracker has no copy-on-write layers to switch to.
   */
  async saveState(deadline: Deadline, dir: string, _nextOverlay: string): Promise<SavedState> {
    await this.pause(deadline);
    await this.client.createSnapshot(deadline, {
      snapshot_path: join(dir, FC_STATE_FILE),
      mem_file_path: join(dir, FC_MEMORY_FILE),
      snapshot_type: "Full",
    });
    const disk = await realpath(join(this.#stateDir, ROOT_LINK));
    await copySparse(disk, join(dir, FC_DISK_FILE));
    return {
      state: FC_STATE_FILE,
      disk: FC_DISK_FILE,
      extraFiles: [{ file: FC_MEMORY_FILE, isSparse: true }],
    };
  }

  close(): void {
    this.client.close();
  }
}

/** A copy of a raw disk: a reflink where possible, else holes kept. */
export async function copySparse(from: string, to: string): Promise<void> {
  await runProgram("cp", ["--reflink=auto", "--sparse=always", from, to]);
}
