// A managed VM's spec (the store's `vms.spec` column): what it is started with, made once from a
// template, the OS's defaults and the request, and checked against the template's limits.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { VmOs } from "../store/vm-types.ts";
import type { ResolvedImage } from "./image-refs.ts";
import type { Drive, Resources, TemplateDocument } from "./template-schema.ts";
import type { CloudInit } from "./vm-schemas.ts";

export interface ManagedSpec {
  backend: string;
  machineType: "pc" | "q35" | "microvm";
  firmware: "bios" | "uefi";
  /** What the request or template named as its image (a store image or a recipe); null: none. */
  image: string | null;
  /** The corral image (image-cache id) it boots, when it boots one. */
  cacheImage: string | null;
  /** An imported disk image its disk is an overlay on. */
  bootDisk: { path: string; format: "qcow2" | "raw" } | null;
  drives: Drive[];
  cpus: number;
  memoryMiB: number;
  diskGiB: number | null;
  min: Resources;
  max: Resources;
  kernelParams: string[];
  hypervEnlightenments: boolean;
  guestChannel: "auto" | "backdoor" | "qga";
  cloudInit: CloudInit | null;
  /** The bridged networks it has a NIC on, in order; absent in VMs made before networks. */
  networks?: string[];
  /** The disk overlay it boots from when not the image's default one (a clone, after a snapshot). */
  rootDisk?: string;
}

/** What a VM gets when neither the request nor a template says, by OS. */
export const OS_DEFAULTS: Readonly<Record<VmOs, { cpus: number; memoryMiB: number }>> = {
  linux: { cpus: 2, memoryMiB: 1024 },
  windows: { cpus: 2, memoryMiB: 4096 },
};

export interface SpecRequest {
  cpus?: number | undefined;
  memoryMiB?: number | undefined;
  diskGiB?: number | undefined;
  drives?: Drive[] | undefined;
  cloudInit?: CloudInit | undefined;
  networks?: string[] | undefined;
}

/** The spec of a VM made from `template` (if any), `image` and the request's own fields. */
export function buildSpec(
  os: VmOs,
  template: TemplateDocument | undefined,
  imageRef: string | undefined,
  image: ResolvedImage,
  request: SpecRequest,
): ManagedSpec {
  const drives = [...(template?.drives ?? []), ...(request.drives ?? [])];
  if (image.kind === "iso") drives.push({ path: image.path, media: "cdrom", readOnly: true });
  const spec: ManagedSpec = {
    backend: template?.backend ?? "qemu",
    machineType: template?.machineType ?? (os === "windows" ? "q35" : "pc"),
    firmware: template?.firmware ?? (os === "windows" ? "uefi" : "bios"),
    image: imageRef ?? null,
    cacheImage: image.kind === "corral" ? image.cacheId : null,
    bootDisk: image.kind === "disk" ? { path: image.path, format: image.format } : null,
    drives,
    cpus: request.cpus ?? template?.cpus ?? OS_DEFAULTS[os].cpus,
    memoryMiB: request.memoryMiB ?? template?.memoryMiB ?? OS_DEFAULTS[os].memoryMiB,
    diskGiB: request.diskGiB ?? template?.diskGiB ?? null,
    min: template?.min ?? {},
    max: template?.max ?? {},
    kernelParams: template?.kernelParams ?? [],
    hypervEnlightenments: template?.hypervEnlightenments ?? false,
    guestChannel: template?.guestChannel ?? "auto",
    cloudInit: request.cloudInit ?? null,
    networks: request.networks ?? template?.networks ?? [],
  };
  checkLimits(spec, template?.name);
  return spec;
}

/**
 * Throws CORRAL_INVALID_ARGUMENT when the spec's size is below its template's `min` or above its
 * `max`, saying which and by how much (`windows-default needs at least 2 vCPUs; asked: 1`).
 */
export function checkLimits(
  spec: Pick<ManagedSpec, "cpus" | "memoryMiB" | "diskGiB" | "min" | "max">,
  templateName: string | undefined,
): void {
  const who = templateName ? `template ${templateName}` : "this VM";
  const problems: string[] = [];
  for (const [field, unit] of [
    ["cpus", " vCPUs"],
    ["memoryMiB", " MiB of memory"],
    ["diskGiB", " GiB of disk"],
  ] as const) {
    const value = spec[field];
    if (value === null || value === undefined) continue;
    const min = spec.min[field];
    const max = spec.max[field];
    if (min !== undefined && value < min) {
      problems.push(`${who} needs at least ${min}${unit}; asked: ${value} (${field})`);
    }
    if (max !== undefined && value > max) {
      problems.push(`${who} allows at most ${max}${unit}; asked: ${value} (${field})`);
    }
  }
  const [first, ...rest] = problems;
  if (first) throw new CorralError(ErrorCodes.INVALID_ARGUMENT, first, { details: rest });
}

/**
 * Whether corral reaches the guest through its backdoor shell (corral's own images have it):
 * such a VM is `running` once the shell answers, and gets its hostname and machine id set.
 */
export function hasBackdoorShell(spec: ManagedSpec): boolean {
  if (spec.guestChannel !== "auto") return spec.guestChannel === "backdoor";
  return spec.cacheImage !== null && spec.bootDisk === null;
}

/** The spec as a VM view shows it. */
export function specView(spec: ManagedSpec) {
  return {
    backend: spec.backend,
    machineType: spec.machineType,
    firmware: spec.firmware,
    image: spec.cacheImage ?? spec.image,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    diskGiB: spec.diskGiB,
    max: spec.max,
    networks: spec.networks ?? [],
  };
}
