// The vm_labels table: a VM's labels, one row per key, so that listing VMs by label uses an index
// on (key, value) rather than reading every VM's JSON. Written only with its VM, by vms.ts.

import type { Labels } from "./columns.ts";
import type { Database } from "./database.ts";

/** An SQL expression for the labels of the VM row `vms`, as a JSON object. */
export const LABELS_JSON =
  "(SELECT json_group_object(key, value) FROM vm_labels WHERE vm_id = vms.id)";

/** Replaces the labels of VM `vmId` with `labels`; run it inside the VM's write. */
export function writeLabels(db: Database, vmId: string, labels: Labels): void {
  db.prepare("DELETE FROM vm_labels WHERE vm_id = ?").run(vmId);
  const insert = db.prepare("INSERT INTO vm_labels (vm_id, key, value) VALUES (?, ?, ?)");
  for (const [key, value] of Object.entries(labels)) insert.run(vmId, key, value);
}

/** SQL conditions on `vms` (and their parameters) that keep the VMs carrying all of `labels`. */
export function labelConditions(labels: Labels): { conditions: string[]; parameters: string[] } {
  const entries = Object.entries(labels);
  return {
    conditions: entries.map(
      () => "vms.id IN (SELECT vm_id FROM vm_labels WHERE key = ? AND value = ?)",
    ),
    parameters: entries.flat(),
  };
}
