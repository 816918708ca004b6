// The vms table: one row per managed VM — its name, spec, state and folder. A name is taken by
// exactly one VM (a unique index decides between racing creates); state changes are
// compare-and-set; an operation claims the VM so that two operations on it never interleave.

import { CorralError, ErrorCodes } from "../errors.ts";
import {
  fromJson,
  invalid,
  type JsonObject,
  type Labels,
  now,
  objectToJson,
  placeholders,
  requireAbsolutePath,
  requireDnsLabel,
  requireLabels,
  requireName,
  requireOneOf,
} from "./columns.ts";
import type { Database } from "./database.ts";
import { idFor } from "./ids.ts";
import { uniqueConflict } from "./sqlite-errors.ts";
import { LABELS_JSON, labelConditions, writeLabels } from "./vm-labels.ts";
import {
  type Claim,
  type NewVm,
  type StateChange,
  type TransitionResult,
  VM_OSES,
  VM_STATES,
  type Vm,
  type VmFilter,
  type VmOs,
  type VmPatch,
  type VmState,
} from "./vm-types.ts";

interface VmRow {
  id: string;
  name: string;
  template: string | null;
  image_id: string | null;
  source_snapshot_id: string | null;
  os: VmOs;
  spec: string;
  state: VmState;
  state_reason: string | null;
  state_changed_at: string;
  operation: string | null;
  state_dir: string;
  ownership: string | null;
  labels: string;
  created_at: string;
  updated_at: string;
}

const SELECT = `SELECT vms.*, ${LABELS_JSON} AS labels FROM vms`;

export class VmRepository {
  readonly #db: Database;
  #revision = 0;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * A number that changes whenever this repository may have changed a VM (a failed or rolled
   * back write may change it too): what a cache of views keys on. Writes of other connections
   * are not counted.
   */
  get revision(): number {
    return this.#revision;
  }

  /**
   * Adds a VM. Throws CORRAL_CONFLICT when its name (or folder, or id) is taken — of two
   * creates of one name, exactly one succeeds —, CORRAL_NOT_FOUND when its image or source
   * snapshot does not exist, CORRAL_INVALID_ARGUMENT when a field is invalid.
   */
  create(input: NewVm): Vm {
    this.#revision++;
    const id = idFor("VM", input.id);
    const name = requireDnsLabel(input.name, "VM name");
    const template = input.template == null ? null : requireDnsLabel(input.template, "template");
    const os = requireOneOf(input.os, VM_OSES, "os");
    const spec = objectToJson(input.spec, "VM spec");
    const state = requireOneOf(input.state, VM_STATES, "VM state");
    const stateDir = requireAbsolutePath(input.stateDir, "VM folder");
    const ownership =
      input.ownership == null ? null : objectToJson(input.ownership, "ownership record");
    const labels = requireLabels(input.labels ?? {});
    return this.#db.transaction(() => {
      this.#requireRow("images", "image", input.imageId);
      this.#requireRow("snapshots", "snapshot", input.sourceSnapshotId);
      const time = now();
      try {
        this.#db
          .prepare(
            `INSERT INTO vms (id, name, template, image_id, source_snapshot_id, os, spec, state,
               state_reason, state_changed_at, state_dir, ownership, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            id,
            name,
            template,
            input.imageId ?? null,
            input.sourceSnapshotId ?? null,
            os,
            spec,
            state,
            input.stateReason ?? null,
            time,
            stateDir,
            ownership,
            time,
            time,
          );
      } catch (error) {
        throw uniqueConflict(error, {
          "vms.name": `a VM named "${name}" already exists`,
          "vms.state_dir": `the folder ${stateDir} already belongs to another VM`,
          "vms.id": `a VM with id ${id} already exists`,
        });
      }
      writeLabels(this.#db, id, labels);
      return this.#byId(id);
    });
  }

  /** The VM with this id, or else with this name, if there is one. */
  find(idOrName: string): Vm | undefined {
    const row = (this.#db.prepare(`${SELECT} WHERE vms.id = ?`).get(idOrName) ??
      this.#db.prepare(`${SELECT} WHERE vms.name = ?`).get(idOrName)) as VmRow | undefined;
    return row && toVm(row);
  }

  /** The VM with this id or name; throws CORRAL_NOT_FOUND when there is none. */
  get(idOrName: string): Vm {
    const vm = this.find(idOrName);
    if (!vm) throw new CorralError(ErrorCodes.NOT_FOUND, `no VM with id or name "${idOrName}"`);
    return vm;
  }

  /** The VMs that pass `filter`, in the order they were added. */
  list(filter: VmFilter = {}): Vm[] {
    const { sql, parameters } = listQuery(filter);
    const rows = this.#db.prepare(sql).all(...parameters) as unknown as VmRow[];
    return rows.map(toVm);
  }

  /**
   * Changes the VM's spec, labels, ownership record or source snapshot; throws CORRAL_NOT_FOUND
   * if it (or the snapshot) is gone.
   */
  update(id: string, patch: VmPatch): Vm {
    this.#revision++;
    const sets: string[] = [];
    const values: (string | null)[] = [];
    if (patch.spec !== undefined) {
      sets.push("spec = ?");
      values.push(objectToJson(patch.spec, "VM spec"));
    }
    if (patch.ownership !== undefined) {
      sets.push("ownership = ?");
      values.push(
        patch.ownership === null ? null : objectToJson(patch.ownership, "ownership record"),
      );
    }
    if (patch.sourceSnapshotId !== undefined) {
      sets.push("source_snapshot_id = ?");
      values.push(patch.sourceSnapshotId);
    }
    const labels = patch.labels === undefined ? undefined : requireLabels(patch.labels);
    return this.#db.transaction(() => {
      this.#byId(id);
      this.#requireRow("snapshots", "snapshot", patch.sourceSnapshotId);
      this.#db
        .prepare(`UPDATE vms SET ${[...sets, "updated_at = ?"].join(", ")} WHERE id = ?`)
        .run(...values, now(), id);
      if (labels) writeLabels(this.#db, id, labels);
      return this.#byId(id);
    });
  }

  /**
   * Compare-and-set of the VM's state: moves it to `change.to` only if it is in one of
   * `change.from`, in one statement, so that of two racing changes at most one applies.
   * Throws CORRAL_NOT_FOUND when the VM is gone.
   */
  transition(id: string, change: StateChange): TransitionResult {
    this.#revision++;
    const from = stateList(change.from, "from state");
    const to = requireOneOf(change.to, VM_STATES, "VM state");
    return this.#db.transaction(() => {
      const time = now();
      const { changes } = this.#db
        .prepare(
          `UPDATE vms SET state = ?, state_reason = ?, state_changed_at = ?, updated_at = ?
           WHERE id = ? AND state IN (${placeholders(from.length)})`,
        )
        .run(to, change.reason ?? null, time, time, id, ...from);
      return { applied: Number(changes) > 0, vm: this.#byId(id) };
    });
  }

  /**
   * Takes the VM for `claim.operation`, and moves it to `claim.to` if given — only if no other
   * operation holds it and it is in one of `claim.from`. Release it with release(). Throws
   * CORRAL_CONFLICT naming the operation that holds it or the state it is in, CORRAL_NOT_FOUND
   * when it is gone.
   */
  claim(id: string, claim: Claim): Vm {
    this.#revision++;
    const operation = requireName(claim.operation, "operation");
    const from = stateList(claim.from, "from state");
    const to = claim.to === undefined ? undefined : requireOneOf(claim.to, VM_STATES, "VM state");
    return this.#db.transaction(() => {
      const time = now();
      const setState = to === undefined ? "" : "state = ?, state_reason = ?, state_changed_at = ?,";
      const { changes } = this.#db
        .prepare(
          `UPDATE vms SET ${setState} operation = ?, updated_at = ?
           WHERE id = ? AND operation IS NULL AND state IN (${placeholders(from.length)})`,
        )
        .run(
          ...(to === undefined ? [] : [to, claim.reason ?? null, time]),
          operation,
          time,
          id,
          ...from,
        );
      const vm = this.#byId(id);
      if (Number(changes) > 0) return vm;
      if (vm.operation !== null) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `VM "${vm.name}" is busy with ${vm.operation}: ${operation} cannot run until it ends`,
        );
      }
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `VM "${vm.name}" is ${vm.state}: ${operation} needs it ${from.join(" or ")}`,
      );
    });
  }

  /**
   * Ends `operation`'s hold on the VM, moving it to `change.to` if given. Returns false when
   * the operation did not hold it (or the VM is gone).
   */
  release(
    id: string,
    operation: string,
    change?: { to: VmState; reason?: string | null },
  ): boolean {
    this.#revision++;
    const to = change && requireOneOf(change.to, VM_STATES, "VM state");
    const time = now();
    const setState = to === undefined ? "" : "state = ?, state_reason = ?, state_changed_at = ?,";
    return this.#db.transaction(() => {
      const { changes } = this.#db
        .prepare(
          `UPDATE vms SET ${setState} operation = NULL, updated_at = ? WHERE id = ? AND operation = ?`,
        )
        .run(...(to === undefined ? [] : [to, change?.reason ?? null, time]), time, id, operation);
      return Number(changes) > 0;
    });
  }

  /**
   * Ends every operation's hold, for a manager starting after one that stopped mid-operation.
   * Returns the VMs that were held, as they were (with their operation), to reconcile.
   */
  releaseAll(): Vm[] {
    this.#revision++;
    return this.#db.transaction(() => {
      const held = this.#db
        .prepare(`${SELECT} WHERE vms.operation IS NOT NULL ORDER BY vms.rowid`)
        .all() as unknown as VmRow[];
      this.#db
        .prepare("UPDATE vms SET operation = NULL, updated_at = ? WHERE operation IS NOT NULL")
        .run(now());
      return held.map(toVm);
    });
  }

  /**
   * Deletes the VM's row and labels; its snapshots stay, without their VM (snapshots.ts).
   * Returns the VM as it was. Throws CORRAL_NOT_FOUND when it is gone.
   */
  remove(id: string): Vm {
    this.#revision++;
    return this.#db.transaction(() => {
      const vm = this.#byId(id);
      this.#db.prepare("DELETE FROM vms WHERE id = ?").run(id);
      return vm;
    });
  }

  #byId(id: string): Vm {
    const row = this.#db.prepare(`${SELECT} WHERE vms.id = ?`).get(id) as VmRow | undefined;
    if (!row) throw new CorralError(ErrorCodes.NOT_FOUND, `no VM with id "${id}"`);
    return toVm(row);
  }

  #requireRow(table: "images" | "snapshots", what: string, id: string | null | undefined): void {
    if (id == null) return;
    if (this.#db.prepare(`SELECT 1 FROM ${table} WHERE id = ?`).get(id)) return;
    throw new CorralError(ErrorCodes.NOT_FOUND, `no ${what} with id "${id}"`);
  }
}

/** The query that lists the VMs passing `filter`: by index on state, and on label key and value. */
export function listQuery(filter: VmFilter): { sql: string; parameters: string[] } {
  const conditions: string[] = [];
  const parameters: string[] = [];
  if (filter.state !== undefined) {
    const states = stateList(filter.state, "state filter");
    conditions.push(`vms.state IN (${placeholders(states.length)})`);
    parameters.push(...states);
  }
  if (filter.labels !== undefined) {
    const labels = labelConditions(requireLabels(filter.labels, "label filter"));
    conditions.push(...labels.conditions);
    parameters.push(...labels.parameters);
  }
  const where = conditions.length > 0 ? ` WHERE ${conditions.join(" AND ")}` : "";
  return { sql: `${SELECT}${where} ORDER BY vms.rowid`, parameters };
}

function stateList(states: VmState | readonly VmState[], what: string): VmState[] {
  const list = typeof states === "string" ? [states] : [...states];
  if (list.length === 0) throw invalid(what, list, "must name at least one state");
  return list.map((state) => requireOneOf(state, VM_STATES, what));
}

function toVm(row: VmRow): Vm {
  return {
    id: row.id,
    name: row.name,
    template: row.template,
    imageId: row.image_id,
    sourceSnapshotId: row.source_snapshot_id,
    os: row.os,
    spec: fromJson(row.spec) as JsonObject,
    state: row.state,
    stateReason: row.state_reason,
    stateChangedAt: row.state_changed_at,
    operation: row.operation,
    stateDir: row.state_dir,
    ownership: fromJson(row.ownership),
    labels: fromJson<Labels>(row.labels) as Labels,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
