// Saving and restoring a QEMU VM's state: device and memory state through migration to a file,
// and the disk frozen by turning the running overlay into a read-only layer.

import { constants, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes, UnsupportedError } from "../../errors.ts";
import { shellQuote } from "../../guest/shell-quote.ts";
import { runProgram } from "../../host/run-program.ts";
import { sparseDigestAt } from "../../host/sparse-digest.ts";
import type { SavedState } from "../backend.ts";
import { copyMemory, sharedMemoryPath } from "./memory-file.ts";
import { makeOverlayTemplate } from "./overlay-template.ts";
import { TRANSFER_DISK_DRIVE } from "./transfer-disk.ts";

/** Runs one QMP command. */
export type QmpCommand = <T = unknown>(
  deadline: Deadline,
  name: string,
  args?: Record<string, unknown>,
) => Promise<T>;

interface ImageInfo {
  filename: string;
  format: string;
  "backing-image"?: ImageInfo;
}

interface BlockInfo {
  device: string;
  inserted?: { file: string; ro: boolean; drv: string; image?: ImageInfo };
}

interface MigrationInfo {
  status?: string;
  "error-desc"?: string;
}

interface Memdev {
  id?: string;
  size: number;
  share: boolean;
}

const STATE_FILE = "state";
const MEMORY_FILE = "memory";
const POLL_MS = 10;

/**
 * Pauses the VM (QEMU process `pid`) and writes its state into `dir`: the migration stream, a
 * copy of the root disk's frozen layer with a ready-made clone overlay over it
 * (overlay-template.ts) and, when its RAM is a shared memfd, a copy of that RAM (the stream then
 * leaves the RAM out: x-ignore-shared) whose checksum is taken on request, after the VM has
 * resumed. The VM stays paused, writing from now
 * on to a new overlay (`nextOverlay`) whose backing file is the frozen layer; `cont` resumes it,
 * on its own RAM: the copy is the snapshot's alone.
 */
export async function saveState(
  qmp: QmpCommand,
  deadline: Deadline,
  pid: number,
  dir: string,
  nextOverlay: string,
): Promise<SavedState> {
  await qmp(deadline, "stop");
  const ram = await sharedRam(qmp, deadline, pid);
  // A UEFI variable store (flash) travels in the migration stream, which writes it back to the
  // restoring VM's own store (pflash_post_load): it is not a disk to freeze. Nor is the transfer
  // disk: its bytes matter only during a copy, and a restored VM gets an empty one of its own.
  const writable = (await qmp<BlockInfo[]>(deadline, "query-block")).filter(
    (block) =>
      block.inserted &&
      !block.inserted.ro &&
      !block.device.startsWith("pflash") &&
      block.device !== TRANSFER_DISK_DRIVE,
  );
  const root = writable[0];
  if (!root?.inserted || writable.length !== 1 || root.inserted.drv !== "qcow2") {
    throw new UnsupportedError(
      "qemu",
      "snapshot",
      `snapshots need exactly one writable qcow2 disk; this VM has ${writable.map((b) => `${b.device} (${b.inserted?.drv})`).join(", ") || "none"}`,
    );
  }
  // The disk first: once migrated, QEMU hands its images over and they stay inactive until `cont`.
  const frozen = root.inserted.file;
  await qmp(deadline, "blockdev-snapshot-sync", {
    device: root.device,
    "snapshot-file": nextOverlay,
    format: "qcow2",
  });
  const disk = "disk.qcow2";
  const copied = copyFile(frozen, join(dir, disk), constants.COPYFILE_FICLONE);
  // Made from the copy (only its size is read) while the state is migrated.
  const template = copied.then(() => makeOverlayTemplate(join(dir, disk)));
  const memory = ram === undefined ? undefined : copyMemory(ram, join(dir, MEMORY_FILE));
  // All are awaited below; a failure meanwhile must not count as unhandled.
  for (const pending of [copied, template, memory]) pending?.catch(() => undefined);
  try {
    await migrateToFile(qmp, deadline, join(dir, STATE_FILE), ram !== undefined);
  } finally {
    await Promise.allSettled([copied, template, memory]);
  }
  await copied;
  const written = await memory;
  await backOntoBase(join(dir, disk), root.inserted.image);
  return {
    state: STATE_FILE,
    disk,
    extraFiles: [{ file: await template }],
    ...(written !== undefined
      ? {
          memory: {
            file: MEMORY_FILE,
            digest: () => sparseDigestAt(join(dir, MEMORY_FILE), written),
          },
        }
      : {}),
  };
}

/** The path of the VM's RAM when it is a shared memfd corral can copy; undefined otherwise. */
async function sharedRam(
  qmp: QmpCommand,
  deadline: Deadline,
  pid: number,
): Promise<string | undefined> {
  const memdevs = await qmp<Memdev[]>(deadline, "query-memdev");
  const ram = memdevs.find((memdev) => memdev.id === "pc.ram" || memdev.id === "microvm.ram");
  return ram?.share ? sharedMemoryPath(pid, ram.size) : undefined;
}

/**
 * Migrates the paused VM into `stateFile`; without its shared RAM when `skipShared`. The
 * capability is set either way: a restored VM still has the one its own state was loaded with.
 */
async function migrateToFile(
  qmp: QmpCommand,
  deadline: Deadline,
  stateFile: string,
  skipShared: boolean,
): Promise<void> {
  await qmp(deadline, "migrate-set-capabilities", {
    capabilities: [{ capability: "x-ignore-shared", state: skipShared }],
  });
  await qmp(deadline, "migrate", { uri: `exec:cat > ${shellQuote(stateFile)}` });
  for (;;) {
    const info = await qmp<MigrationInfo>(deadline, "query-migrate");
    if (info.status === "completed") return;
    if (info.status === "failed" || info.status === "cancelled") {
      throw new CorralError(
        ErrorCodes.SNAPSHOT_FAILED,
        `saving the VM state to ${stateFile} failed: ${info["error-desc"] ?? info.status}`,
      );
    }
    await sleep(POLL_MS);
  }
}

/**
 * Makes the snapshot's disk layer (a copy of `frozen`) back onto the bottom of its chain (the
 * image) when there are layers in between: they are earlier frozen layers in the VM's state
 * folder or other snapshots' disks, and the snapshot must outlive both. Only the data of the
 * layers in between is read and merged (qemu-img's rebase within one chain).
 */
async function backOntoBase(copy: string, frozen: ImageInfo | undefined): Promise<void> {
  const backing = frozen?.["backing-image"];
  if (!backing?.["backing-image"]) return;
  let base = backing;
  while (base["backing-image"]) base = base["backing-image"];
  // -U: the layers in between are open in the running QEMU, read-only, and never written again.
  await runProgram("qemu-img", [
    ...["rebase", "-q", "-U", "-f", "qcow2", "-t", "unsafe"],
    ...["-b", base.filename, "-F", base.format, copy],
  ]);
}
