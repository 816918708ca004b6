// The template document: what a VM is made from when a request leaves things out. Built-in
// templates (templates/*.yaml in the package), the user's YAML files and `POST /v1/templates`
// are all validated against this one TypeBox schema.

import { type Static, Type } from "typebox";
import { allBackends } from "../backends/registry.ts";
import { NetworkListSchema } from "./network-schemas.ts";

/** A VMM backend's name (`corral doctor` says which can run here). */
export const BackendSchema = Type.Unsafe<string>(
  Type.Union(
    allBackends().map((backend) => Type.Literal(backend.name)),
    { description: "the VMM backend; default qemu (`corral doctor` says which can run here)" },
  ),
);

/** A DNS label: lower-case letters, digits and "-", starting with a letter, at most 63. */
export const DnsLabel = Type.String({
  pattern: "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
  description: "a DNS label: lower-case letters, digits and '-', starting with a letter",
});

export const VmOsSchema = Type.Union([Type.Literal("linux"), Type.Literal("windows")], {
  description: "the guest's operating system family",
});

export const MachineTypeSchema = Type.Union(
  [Type.Literal("pc"), Type.Literal("q35"), Type.Literal("microvm")],
  {
    description:
      "QEMU machine type: pc (i440fx, BIOS), q35 (PCIe; UEFI with firmware: uefi), microvm (virtio-mmio, direct kernel boot)",
  },
);

export const FirmwareSchema = Type.Union([Type.Literal("bios"), Type.Literal("uefi")], {
  description: "bios (SeaBIOS, or direct kernel boot) or uefi (OVMF, q35 only)",
});

/** vCPUs, memory and disk; every field optional where a template or a limit uses it. */
export const Resources = Type.Object(
  {
    cpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 255 })),
    memoryMiB: Type.Optional(Type.Integer({ minimum: 64, maximum: 1_048_576 })),
    diskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
  },
  { additionalProperties: false },
);
export type Resources = Static<typeof Resources>;

/** An extra drive: an install ISO, a drivers ISO, a data disk. */
export const DriveSchema = Type.Object(
  {
    path: Type.String({ minLength: 1, description: "absolute path of the file on the host" }),
    media: Type.Union([Type.Literal("cdrom"), Type.Literal("disk")]),
    readOnly: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type Drive = Static<typeof DriveSchema>;

export const TemplateSchema = Type.Object(
  {
    name: DnsLabel,
    description: Type.Optional(Type.String({ maxLength: 500 })),
    os: VmOsSchema,
    backend: Type.Optional(BackendSchema),
    machineType: Type.Optional(MachineTypeSchema),
    firmware: Type.Optional(FirmwareSchema),
    image: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "the image a VM's disk is made from: an image id or name in the store, or a corral recipe (debian-12); none: an empty disk of diskGiB",
      }),
    ),
    cpus: Type.Integer({ minimum: 1, maximum: 255 }),
    memoryMiB: Type.Integer({ minimum: 64, maximum: 1_048_576 }),
    diskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
    min: Type.Optional(Resources),
    max: Type.Optional(Resources),
    kernelParams: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 64 })),
    drives: Type.Optional(Type.Array(DriveSchema, { maxItems: 8 })),
    networks: Type.Optional(NetworkListSchema),
    hypervEnlightenments: Type.Optional(
      Type.Boolean({ description: "Hyper-V enlightenments for Windows guests (KVM only)" }),
    ),
    guestChannel: Type.Optional(
      Type.Union([Type.Literal("auto"), Type.Literal("backdoor"), Type.Literal("qga")], {
        description: "how corral talks to the guest: probed (auto), the backdoor shell, qemu-ga",
      }),
    ),
  },
  { additionalProperties: false, $id: "Template" },
);
export type TemplateDocument = Static<typeof TemplateSchema>;
