// The shapes of the manager's VM requests and views, as TypeBox schemas: the server declares its
// routes with them (and so the OpenAPI document), the manager takes and returns their types.

import { type Static, Type } from "typebox";
import { VM_STATES } from "../store/vm-types.ts";
import { NetworkListSchema } from "./network-schemas.ts";
import { BackendSchema, DnsLabel, DriveSchema, Resources, VmOsSchema } from "./template-schema.ts";

export const VmStateSchema = Type.Enum(VM_STATES, {
  description: "where the VM is in its lifecycle (docs/manager.md has the state table)",
});

export const LabelsSchema = Type.Record(
  Type.String({ pattern: "^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,62}$" }),
  Type.String({ maxLength: 256 }),
  { maxProperties: 64, description: "key → value; keys: letters, digits, '.', '_', '/', '-'" },
);

/** cloud-init NoCloud data for a VM made from a cloud image. */
export const CloudInitSchema = Type.Object(
  {
    hostname: Type.Optional(DnsLabel),
    users: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ pattern: "^[a-z_][a-z0-9_-]{0,31}$" }),
            sshAuthorizedKeys: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
            sudo: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        { maxItems: 32 },
      ),
    ),
    sshAuthorizedKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: "keys for the default user" }),
    ),
    userData: Type.Optional(
      Type.String({ maxLength: 1_048_576, description: "user-data passed through as it is" }),
    ),
  },
  { additionalProperties: false },
);
export type CloudInit = Static<typeof CloudInitSchema>;

export const CreateVmBody = Type.Object(
  {
    name: DnsLabel,
    template: Type.Optional(DnsLabel),
    image: Type.Optional(Type.String({ minLength: 1, description: "image id or name" })),
    fromSnapshot: Type.Optional(
      Type.String({ minLength: 1, description: "snapshot id: clone the VM it was taken of" }),
    ),
    os: Type.Optional(VmOsSchema),
    backend: Type.Optional(BackendSchema),
    cpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 255 })),
    memoryMiB: Type.Optional(Type.Integer({ minimum: 64, maximum: 1_048_576 })),
    diskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
    labels: Type.Optional(LabelsSchema),
    drives: Type.Optional(Type.Array(DriveSchema, { maxItems: 8 })),
    cloudInit: Type.Optional(CloudInitSchema),
    networks: Type.Optional(NetworkListSchema),
    start: Type.Optional(Type.Boolean({ description: "start it once created (default true)" })),
  },
  { additionalProperties: false },
);
export type CreateVmRequest = Static<typeof CreateVmBody>;

export const PatchVmBody = Type.Object(
  {
    labels: Type.Optional(LabelsSchema),
    cpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 255 })),
    memoryMiB: Type.Optional(Type.Integer({ minimum: 64, maximum: 1_048_576 })),
  },
  {
    additionalProperties: false,
    description: "labels at any time; cpus and memoryMiB of a VM that is not running (next start)",
  },
);
export type PatchVmRequest = Static<typeof PatchVmBody>;

export const StopVmBody = Type.Object(
  {
    force: Type.Optional(Type.Boolean({ description: "power off at once, no ACPI request" })),
    graceMs: Type.Optional(
      Type.Integer({ minimum: 0, description: "wait this long for the guest (default 30000)" }),
    ),
  },
  { additionalProperties: false },
);
export type StopVmRequest = Static<typeof StopVmBody>;

export const ResizeVmBody = Type.Object(Resources.properties, {
  additionalProperties: false,
  minProperties: 1,
  description: "the new size; a running VM can only grow, up to its template's max",
});
export type ResizeVmRequest = Static<typeof ResizeVmBody>;

export const VmSpecView = Type.Object({
  backend: Type.String(),
  machineType: Type.String(),
  firmware: Type.String(),
  image: Type.Union([Type.String(), Type.Null()]),
  cpus: Type.Integer(),
  memoryMiB: Type.Integer(),
  diskGiB: Type.Union([Type.Integer(), Type.Null()]),
  max: Resources,
  networks: Type.Array(Type.String(), { description: "the networks it has a NIC on, in order" }),
});

const NicView = Type.Object({
  index: Type.Integer({ description: "its place among the VM's NICs; the guest sees this order" }),
  network: Type.String(),
  mac: Type.String(),
  address: Type.String({ description: "the IPv4 address DHCP gives it, kept for the VM's life" }),
});

export const VmView = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    os: VmOsSchema,
    template: Type.Union([Type.String(), Type.Null()]),
    imageId: Type.Union([Type.String(), Type.Null()]),
    sourceSnapshotId: Type.Union([Type.String(), Type.Null()]),
    state: VmStateSchema,
    stateReason: Type.Union([Type.String(), Type.Null()]),
    stateChangedAt: Type.String(),
    operation: Type.Union([Type.String(), Type.Null()], {
      description: "the operation in progress on it, if any",
    }),
    spec: VmSpecView,
    nics: Type.Array(NicView, { description: "its NICs on bridged networks" }),
    labels: Type.Record(Type.String(), Type.String()),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { $id: "Vm" },
);
export type VmViewType = Static<typeof VmView>;

export const SnapshotView = Type.Object(
  {
    id: Type.String(),
    vmId: Type.Union([Type.String(), Type.Null()]),
    vmName: Type.String(),
    name: Type.String(),
    os: VmOsSchema,
    imageId: Type.Union([Type.String(), Type.Null()]),
    sizeBytes: Type.Integer(),
    createdAt: Type.String(),
  },
  { $id: "Snapshot" },
);

export const CreateSnapshotBody = Type.Object(
  { name: Type.Optional(Type.String({ pattern: "^[a-z0-9][a-z0-9._-]{0,62}$" })) },
  { additionalProperties: false },
);

const NicTraffic = Type.Object({
  bytes: Type.Integer(),
  packets: Type.Integer(),
  errors: Type.Integer(),
  dropped: Type.Integer(),
});

export const VmStatsView = Type.Object({
  vmId: Type.String(),
  state: VmStateSchema,
  uptimeS: Type.Union([Type.Number(), Type.Null()]),
  vmm: Type.Union([
    Type.Object({
      pid: Type.Integer(),
      cpuTimeS: Type.Number({ description: "user + system CPU time of the VMM process" }),
      rssBytes: Type.Integer(),
    }),
    Type.Null(),
  ]),
  block: Type.Array(
    Type.Object({
      device: Type.String(),
      readBytes: Type.Integer(),
      writtenBytes: Type.Integer(),
      readOps: Type.Integer(),
      writeOps: Type.Integer(),
    }),
  ),
  nics: Type.Array(
    Type.Object({
      ...NicView.properties,
      tap: Type.String({ description: "its TAP device on the host" }),
      rx: NicTraffic,
      tx: NicTraffic,
    }),
    {
      description:
        "each NIC's traffic as the guest sees it (rx: what the guest received), since its TAP was made",
    },
  ),
});
