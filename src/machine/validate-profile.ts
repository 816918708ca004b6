// The rules of a machine's profile options (machineType, firmware, bootDisk, diskGiB, drives,
// hypervEnlightenments), each alone and together: what fits with what, said before anything
// starts.

import { CorralError, ErrorCodes } from "../errors.ts";
import type { MachineOptions } from "./machine-options.ts";
import type { FieldRule } from "./validate-options.ts";

const MAX_DISK_GIB = 65_536;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const isPath = (value: unknown) => typeof value === "string" && value !== "";

const isFormat = (value: unknown) => value === "qcow2" || value === "raw";

/** Whether `value` has only `keys` among its own keys. */
const hasOnly = (value: Record<string, unknown>, keys: readonly string[]) =>
  Object.keys(value).every((key) => keys.includes(key));

const isDrive = (value: unknown) =>
  isObject(value) &&
  hasOnly(value, ["path", "media", "readOnly", "format"]) &&
  isPath(value.path) &&
  (value.media === "cdrom" || value.media === "disk") &&
  (value.readOnly === undefined || typeof value.readOnly === "boolean") &&
  (value.format === undefined || isFormat(value.format));

export const PROFILE_OPTION_RULES = {
  machineType: (value) =>
    value === "pc" || value === "q35" || value === "microvm"
      ? undefined
      : '"pc", "q35" or "microvm"',
  firmware: (value) => (value === "bios" || value === "uefi" ? undefined : '"bios" or "uefi"'),
  bootDisk: (value) =>
    isObject(value) &&
    hasOnly(value, ["path", "format"]) &&
    isPath(value.path) &&
    isFormat(value.format)
      ? undefined
      : '{ path: a disk image file, format: "qcow2" or "raw" }',
  diskGiB: (value) =>
    Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_DISK_GIB
      ? undefined
      : `a whole number of GiB from 1 to ${MAX_DISK_GIB}`,
  drives: (value) =>
    Array.isArray(value) && value.every(isDrive)
      ? undefined
      : 'a list of { path, media: "cdrom" or "disk", readOnly?: true or false, format?: "raw" or "qcow2" }',
  hypervEnlightenments: (value) => (typeof value === "boolean" ? undefined : "true or false"),
} satisfies { readonly [K in keyof MachineOptions]?: FieldRule };

/** Whether the firmware boots a disk: no corral image (image null, or a bootDisk without one). */
export function isDiskBoot(options: Pick<MachineOptions, "image" | "bootDisk">): boolean {
  return options.image === null || (options.image === undefined && options.bootDisk !== undefined);
}

/**
 * Throws CORRAL_INVALID_ARGUMENT when profile options (each valid alone) do not fit together
 * or with the boot source; `subject` starts the message.
 */
export function validateProfile(subject: string, options: MachineOptions): void {
  const refuse = (message: string) => {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `${subject}: ${message}`);
  };
  const { machineType, firmware, bootDisk, diskGiB, drives, hypervEnlightenments } = options;
  const profile = { machineType, firmware, bootDisk, diskGiB, hypervEnlightenments };
  const given = Object.entries(profile).filter(([, value]) => value !== undefined);
  if (options.startScript !== undefined && given.length > 0) {
    refuse(
      `a start script brings its own machine and disks; ${given.map(([key]) => key).join(", ")} need an image or a bootDisk`,
    );
  }
  if (firmware === "uefi" && machineType !== undefined && machineType !== "q35") {
    refuse(`firmware "uefi" needs machineType "q35" (it is ${JSON.stringify(machineType)})`);
  }
  if (machineType === "microvm") {
    if (isDiskBoot(options)) {
      refuse(
        "a microvm has no firmware to boot a disk with: it boots an image's kernel directly; give the image (bootDisk is then its root disk)",
      );
    }
    if (hypervEnlightenments)
      refuse("Hyper-V enlightenments are for pc or q35 machines, not microvm");
  }
  if (isDiskBoot(options) && (options.kernelParams ?? []).length > 0) {
    refuse("kernelParams need an image's kernel; a disk booted by its firmware has its own");
  }
  if (options.image === null && bootDisk === undefined && diskGiB === undefined) {
    refuse("with image: null and no bootDisk the VM boots an empty disk: give its size, diskGiB");
  }
  if (options.snapshot !== undefined && diskGiB !== undefined) {
    refuse("a machine started from a snapshot has the snapshot's disk: leave diskGiB out");
  }
  for (const [index, drive] of (drives ?? []).entries()) {
    if (drive.media !== "cdrom") continue;
    if (drive.format === "qcow2" || drive.readOnly === false) {
      refuse(`drives[${index}] is a CD-ROM: always raw (an ISO) and read-only`);
    }
  }
}
