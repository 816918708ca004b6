// Taking a snapshot of a running machine and preparing a restore from one. The snapshot folder is
// written beside its final place and renamed into it only when complete (atomic-dir.ts), so a
// failure (a full disk, or corral killed, included) leaves nothing a reader could take for a
// snapshot.

import { access } from "node:fs/promises";
import { join } from "node:path";
import type { Backend, RestoreFiles, RunningVm } from "../backends/backend.ts";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes, UnsupportedError } from "../errors.ts";
import { writeDirAtomically } from "../host/atomic-dir.ts";
import { sparseDigest } from "../host/sparse-digest.ts";
import {
  describeFile,
  type MachineIdentity,
  readManifest,
  requireCompatible,
  SNAPSHOT_FORMAT,
  type SnapshotFile,
  type SnapshotManifest,
  verifyFiles,
  writeManifest,
} from "./snapshot-manifest.ts";

/**
 * Saves `vm` into the snapshot folder `target` (which must not exist yet). The VM is paused
 * while its state is saved, then `afterSave` runs (the caller resumes the VM there, or leaves
 * it paused) while the files are checksummed. `nextOverlay` is where the VM writes from now on.
 * Throws CORRAL_CONFLICT when `target` exists, or was written by another process meanwhile
 * (this snapshot is then dropped); CORRAL_SNAPSHOT_FAILED when saving fails.
 */
export async function writeSnapshot(
  vm: RunningVm,
  deadline: Deadline,
  target: string,
  nextOverlay: string,
  about: { machine: string; identity: MachineIdentity; shellSession?: string | undefined },
  afterSave: () => Promise<void> = async () => {},
): Promise<SnapshotManifest> {
  const snapshotting = vm.ability("snapshot");
  if (!snapshotting)
    throw new UnsupportedError(vm.backend, "snapshot", `${about.machine}: snapshot`);
  if (await exists(target)) {
    throw new CorralError(
      ErrorCodes.CONFLICT,
      `${about.machine}: snapshot folder ${target} already exists; remove it or pick another`,
    );
  }
  try {
    return await writeDirAtomically(target, async (partial) => {
      const saved = await snapshotting.saveState(deadline, partial, nextOverlay);
      // The files are the snapshot's own copies: the VM may run on while they are hashed.
      await afterSave();
      const manifest: SnapshotManifest = {
        format: SNAPSHOT_FORMAT,
        createdAt: new Date().toISOString(),
        machine: about.machine,
        ...about.identity,
        state: saved.state,
        disk: saved.disk,
        ...(saved.memory ? { memory: saved.memory.file } : {}),
        ...(about.shellSession ? { shellSession: about.shellSession } : {}),
        files: {
          [saved.state]: await describeFile(join(partial, saved.state)),
          [saved.disk]: await describeFile(join(partial, saved.disk)),
          ...(saved.memory && {
            [saved.memory.file]: await describeFile(
              join(partial, saved.memory.file),
              await saved.memory.digest(),
            ),
          }),
          ...(await describeExtraFiles(partial, saved.extraFiles ?? [])),
        },
      };
      await writeManifest(partial, manifest);
      return manifest;
    });
  } catch (error) {
    if (error instanceof CorralError && error.code === ErrorCodes.CONFLICT) {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `${about.machine}: snapshot ${error.message}; the VM goes on`,
        { cause: error, machine: about.machine },
      );
    }
    // A host program that failed meanwhile (qemu-img on a full disk) failed the snapshot.
    const isSavingFailure =
      error instanceof CorralError &&
      [ErrorCodes.GUEST_CHANNEL_BROKEN, ErrorCodes.HOST_COMMAND_FAILED].includes(
        error.code as never,
      );
    if (error instanceof CorralError && !isSavingFailure) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new CorralError(
      ErrorCodes.SNAPSHOT_FAILED,
      `${about.machine}: cannot write the snapshot ${target}: ${reason}; nothing was kept and the VM goes on`,
      { cause: error, machine: about.machine },
    );
  }
}

/**
 * Checks that the snapshot at `dir` fits the machine about to start and that its files are
 * intact, then creates the machine's own writable overlay on the snapshot's disk. Returns the
 * files to restore, the overlay and the session of the shell the snapshot caught, if any.
 */
export async function prepareRestore(
  dir: string,
  identity: MachineIdentity,
  backend: Backend,
  stateDir: string,
): Promise<{ files: RestoreFiles; overlay: string; shellSession: string | undefined }> {
  const manifest = await readManifest(dir);
  requireCompatible(dir, manifest, identity);
  await verifyFiles(dir, manifest);
  const overlay = join(stateDir, "disk.qcow2");
  await backend.createOverlay(join(dir, manifest.disk), overlay);
  const files: RestoreFiles = {
    state: join(dir, manifest.state),
    ...(manifest.memory ? { memory: join(dir, manifest.memory) } : {}),
  };
  return { files, overlay, shellSession: sessionToken(manifest.shellSession) };
}

/** A recorded shell session, when it is one (32 hex digits); another value is not trusted. */
function sessionToken(value: unknown): string | undefined {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value) ? value : undefined;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The manifest entries of a backend's other saved-state files. */
async function describeExtraFiles(
  dir: string,
  files: readonly { file: string; isSparse?: boolean }[],
): Promise<Record<string, SnapshotFile>> {
  const entries: Record<string, SnapshotFile> = {};
  for (const { file, isSparse } of files) {
    const path = join(dir, file);
    entries[file] = await describeFile(path, isSparse ? await sparseDigest(path) : undefined);
  }
  return entries;
}
