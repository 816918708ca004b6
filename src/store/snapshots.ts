// The snapshots table: one row per saved VM state (its folder holds the files and manifest).
// A snapshot outlives its VM, as a source of clones: deleting the VM leaves its snapshots with no
// VM (vm_id NULL) but with the VM's name, OS and spec as they were when it was taken. A snapshot
// cannot be deleted while a VM cloned from it exists: the clone's disk is a layer on its disk.

import { CorralError, ErrorCodes } from "../errors.ts";
import {
  fromJson,
  type JsonObject,
  now,
  requireAbsolutePath,
  requireCount,
  requireName,
} from "./columns.ts";
import type { Database } from "./database.ts";
import { idFor } from "./ids.ts";
import { uniqueConflict } from "./sqlite-errors.ts";
import type { VmOs } from "./vm-types.ts";

export interface Snapshot {
  id: string;
  /** The VM it was taken of; null once that VM is deleted (the snapshot can still be cloned). */
  vmId: string | null;
  /** That VM's name when the snapshot was taken. */
  vmName: string;
  /** Unique among the snapshots of one VM. */
  name: string;
  /** The image under its disk (copied from the VM). */
  imageId: string | null;
  /** The VM's OS and spec when the snapshot was taken: what a clone is made with. */
  os: VmOs;
  spec: JsonObject;
  folder: string;
  sizeBytes: number;
  createdAt: string;
}

export interface NewSnapshot {
  /** Its id, when the caller needed it first (to name its folder); a new ULID otherwise. */
  id?: string;
  vmId: string;
  name: string;
  folder: string;
  sizeBytes: number;
}

interface SnapshotRow {
  id: string;
  vm_id: string | null;
  vm_name: string;
  name: string;
  image_id: string | null;
  os: VmOs;
  spec: string;
  folder: string;
  size_bytes: number;
  created_at: string;
}

export class SnapshotRepository {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Records a snapshot of VM `vmId`, copying the VM's name, image, OS and spec as they are now.
   * Throws CORRAL_NOT_FOUND when the VM is gone, CORRAL_CONFLICT when the VM has a snapshot of
   * that name or the folder is another snapshot's, CORRAL_INVALID_ARGUMENT for a bad field.
   */
  create(input: NewSnapshot): Snapshot {
    const id = idFor("snapshot", input.id);
    const name = requireName(input.name, "snapshot name");
    const folder = requireAbsolutePath(input.folder, "snapshot folder");
    const sizeBytes = requireCount(input.sizeBytes, "snapshot size");
    return this.#db.transaction(() => {
      const vm = this.#db.prepare("SELECT name FROM vms WHERE id = ?").get(input.vmId) as
        | { name: string }
        | undefined;
      if (!vm) throw new CorralError(ErrorCodes.NOT_FOUND, `no VM with id "${input.vmId}"`);
      try {
        this.#db
          .prepare(
            `INSERT INTO snapshots (id, vm_id, vm_name, name, image_id, os, spec, folder,
               size_bytes, created_at)
             SELECT ?, id, name, ?, image_id, os, spec, ?, ?, ? FROM vms WHERE id = ?`,
          )
          .run(id, name, folder, sizeBytes, now(), input.vmId);
      } catch (error) {
        throw uniqueConflict(error, {
          "snapshots.vm_id, snapshots.name": `VM "${vm.name}" already has a snapshot named "${name}"`,
          "snapshots.folder": `the folder ${folder} already belongs to another snapshot`,
          "snapshots.id": `a snapshot with id ${id} already exists`,
        });
      }
      return this.get(id);
    });
  }

  /** The snapshot with this id, if there is one. */
  find(id: string): Snapshot | undefined {
    const row = this.#db.prepare("SELECT * FROM snapshots WHERE id = ?").get(id) as
      | SnapshotRow
      | undefined;
    return row && toSnapshot(row);
  }

  /** The snapshot with this id; throws CORRAL_NOT_FOUND when there is none. */
  get(id: string): Snapshot {
    const snapshot = this.find(id);
    if (!snapshot) throw new CorralError(ErrorCodes.NOT_FOUND, `no snapshot with id "${id}"`);
    return snapshot;
  }

  /** The snapshots in the order they were added; only those of VM `vmId` when given. */
  list(filter: { vmId?: string } = {}): Snapshot[] {
    const rows = (filter.vmId === undefined
      ? this.#db.prepare("SELECT * FROM snapshots ORDER BY rowid").all()
      : this.#db
          .prepare("SELECT * FROM snapshots WHERE vm_id = ? ORDER BY rowid")
          .all(filter.vmId)) as unknown as SnapshotRow[];
    return rows.map(toSnapshot);
  }

  /**
   * Deletes the snapshot's row (its folder is the caller's to remove) and returns it. Throws
   * CORRAL_NOT_FOUND when it is gone, CORRAL_CONFLICT naming the VMs cloned from it.
   */
  remove(id: string): Snapshot {
    return this.#db.transaction(() => {
      const snapshot = this.get(id);
      const clones = this.#db
        .prepare("SELECT name FROM vms WHERE source_snapshot_id = ? ORDER BY name")
        .all(id) as { name: string }[];
      if (clones.length > 0) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `snapshot "${snapshot.name}" of VM "${snapshot.vmName}" is the disk under VMs ${clones.map((clone) => `"${clone.name}"`).join(", ")}: delete them first`,
        );
      }
      this.#db.prepare("DELETE FROM snapshots WHERE id = ?").run(id);
      return snapshot;
    });
  }
}

function toSnapshot(row: SnapshotRow): Snapshot {
  return {
    id: row.id,
    vmId: row.vm_id,
    vmName: row.vm_name,
    name: row.name,
    imageId: row.image_id,
    os: row.os,
    spec: fromJson(row.spec) as JsonObject,
    folder: row.folder,
    sizeBytes: row.size_bytes,
    createdAt: row.created_at,
  };
}
