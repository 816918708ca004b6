// VMs and snapshots as the API shows them (vm-schemas.ts): the store's rows without what only the
// manager needs (folders, ownership records, disk paths).

import type { Static } from "typebox";
import type { Nic } from "../store/nics.ts";
import type { Snapshot } from "../store/snapshots.ts";
import type { Vm } from "../store/vm-types.ts";
import type { SnapshotView, VmViewType } from "./vm-schemas.ts";
import { type ManagedSpec, specView } from "./vm-spec.ts";

export type SnapshotViewType = Static<typeof SnapshotView>;

/** The VM as the API shows it, with its NICs (`nics`, the store's, in index order). */
export function toVmView(vm: Vm, nics: readonly Nic[]): VmViewType {
  return {
    id: vm.id,
    name: vm.name,
    os: vm.os,
    template: vm.template,
    imageId: vm.imageId,
    sourceSnapshotId: vm.sourceSnapshotId,
    state: vm.state,
    stateReason: vm.stateReason,
    stateChangedAt: vm.stateChangedAt,
    operation: vm.operation,
    spec: specView(vm.spec as unknown as ManagedSpec),
    nics: nics.map(({ index, network, mac, address }) => ({ index, network, mac, address })),
    labels: vm.labels,
    createdAt: vm.createdAt,
    updatedAt: vm.updatedAt,
  };
}

export function toSnapshotView(snapshot: Snapshot): SnapshotViewType {
  return {
    id: snapshot.id,
    vmId: snapshot.vmId,
    vmName: snapshot.vmName,
    name: snapshot.name,
    os: snapshot.os,
    imageId: snapshot.imageId,
    sizeBytes: snapshot.sizeBytes,
    createdAt: snapshot.createdAt,
  };
}
