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
  /** cloud-init data for the VM's NoCloud seed; null: no seed. */
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
  /** Overrides the template's backend. */
  backend?: string | undefined;
  cpus?: number | undefined;
  memoryMiB?: number | undefined;
  diskGiB?: number | undefined;
  drives?: Drive[] | undefined;
  cloudInit?: CloudInit | undefined;
  networks?: string[] | undefined;
}

const GIB = 2 ** 30;

/**
 * The spec of a VM made from `template` (if any), `image` and the request's own fields. A VM of
 * a cloud image (cloud-init in its packages) gets a seed even when the request has no
 * `cloudInit`. Throws CORRAL_INVALID_ARGUMENT for a size outside the template's limits, or a
 * `diskGiB` smaller than the image's disk.
 */
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
    backend: request.backend ?? template?.backend ?? "qemu",
    machineType: template?.machineType ?? (os === "windows" ? "q35" : "pc"),
    firmware: template?.firmware ?? (os === "windows" ? "uefi" : "bios"),
    image: imageRef ?? null,
    cacheImage: image.kind === "corral" ? image.cacheId : null,
    bootDisk: image.kind === "disk" ? { path: image.path, format: image.format } : null,
    drives,
    cpus: request.cpus ?? template?.cpus ?? OS_DEFAULTS[os].cpus,
    memoryMiB: request.memoryMiB ?? template?.memoryMiB ?? OS_DEFAULTS[os].memoryMiB,
    diskGiB: diskSize(image, imageRef, request.diskGiB, template?.diskGiB),
    min: template?.min ?? {},
    max: template?.max ?? {},
    kernelParams: template?.kernelParams ?? [],
    hypervEnlightenments: template?.hypervEnlightenments ?? false,
    guestChannel: template?.guestChannel ?? "auto",
    cloudInit: request.cloudInit ?? (image.kind === "corral" && image.hasCloudInit ? {} : null),
    networks: request.networks ?? template?.networks ?? [],
  };
  checkLimits(spec, template?.name);
  return spec;
}

/**
 * The VM's disk size in GiB: the request's (at least the image's disk: a disk only grows), else
 * the template's when the image's disk fits in it; null: the image's disk as it is.
 */
function diskSize(
  image: ResolvedImage,
  imageRef: string | undefined,
  requested: number | undefined,
  templateDefault: number | undefined,
): number | null {
  const baseBytes = image.kind === "corral" || image.kind === "disk" ? image.diskBytes : 0;
  if (requested !== undefined && requested * GIB < baseBytes) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `body/diskGiB is ${requested}, smaller than the disk of image ${imageRef} (${Math.ceil((baseBytes / GIB) * 100) / 100} GiB): a disk only grows; ask for at least ${Math.ceil(baseBytes / GIB)}`,
    );
  }
  const size = requested ?? templateDefault;
  return size !== undefined && size * GIB >= baseBytes ? size : null;
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
 * Whether corral reaches the guest through its backdoor shell: only corral's own images have it
 * (whatever a template says, as another image may replace the template's), unless the template
 * says `qga`. Such a VM is `running` once the shell answers, and gets its hostname and machine
 * id set.
 */
export function hasBackdoorShell(spec: ManagedSpec): boolean {
  return spec.cacheImage !== null && spec.bootDisk === null && spec.guestChannel !== "qga";
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
