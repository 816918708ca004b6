// What a machine starts from, resolved once per start: its backend, its boot source (the image's
// files, a start script, or a disk its firmware boots), its virtual hardware, its accelerator,
// and the identity a snapshot of it records.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  type Backend,
  type BootSource,
  DEFAULT_MACHINE_TYPE,
  type MachineType,
  type VmMachine,
} from "../backends/backend.ts";
import { findBackend } from "../backends/registry.ts";
import {
  type Accelerator,
  type AcceleratorVerdict,
  type ResolveAcceleratorOptions,
  resolveAccelerator,
} from "../host/accelerator.ts";
import { requireHostTools } from "../host/requirements.ts";
import { defaultProbeKernel, findImage } from "../images/image-cache.ts";
import { ensureVmlinux } from "../images/image-vmlinux.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import type { MachineOptions } from "./machine-options.ts";
import { resolveDrive } from "./root-disk.ts";
import type {
  MachineIdentity,
  SnapshotConfig,
  SnapshotManifest,
  SnapshotSource,
} from "./snapshot-manifest.ts";
import { isDiskBoot } from "./validate-profile.ts";

export interface MachinePlan {
  backend: Backend;
  boot: BootSource;
  accelerator: AcceleratorVerdict;
  /** The virtual hardware; undefined for a start script, which brings its own. */
  machine?: VmMachine | undefined;
}

/** Finds the backend and the image (or start script), and decides the accelerator. */
export async function planMachine(
  options: MachineOptions,
  operation: string,
): Promise<MachinePlan> {
  const backend = findBackend(options.backend);
  requireHostTools(backend.hostTools, operation);
  let boot: BootSource;
  let probeKernel: string | undefined;
  if (options.startScript) {
    boot = { kind: "start-script", path: resolve(options.startScript) };
    probeKernel = await defaultProbeKernel();
  } else if (isDiskBoot(options)) {
    const { bootDisk } = options;
    boot = {
      kind: "disk",
      base: bootDisk ? { path: resolve(bootDisk.path), format: bootDisk.format } : undefined,
    };
    probeKernel = await defaultProbeKernel();
  } else {
    const image = await findImage(options.image ?? DEFAULT_RECIPE);
    const defaults = image.manifest.boot;
    boot = {
      kind: "image",
      imageId: image.manifest.id,
      recipeHash: image.manifest.recipeHash,
      dir: image.dir,
      startScript: join(image.dir, image.manifest.startScript),
      kernel: join(image.dir, "vmlinuz"),
      direct: defaults && {
        initrd: join(image.dir, "initrd"),
        rootDisk: join(image.dir, "root.qcow2"),
        ...defaults,
      },
    };
    probeKernel = boot.kernel;
    if (backend.bootsVmlinux) await ensureVmlinux(image.dir);
  }
  const accelerator = await resolveAccelerator({
    forced: options.accel,
    probeKernel,
    probe: backend.acceleratorProbe,
  });
  return { backend, boot, accelerator, machine: planHardware(options) };
}

function planHardware(options: MachineOptions): VmMachine | undefined {
  if (options.startScript) return undefined;
  return {
    type: options.machineType ?? defaultMachineType(options),
    firmware: options.firmware ?? "bios",
    hypervEnlightenments: options.hypervEnlightenments ?? false,
  };
}

/**
 * q35, or pc for a BIOS machine with CD-ROMs: q35's sit on its AHCI controller, for which Debian's
 * cloud kernel (corral's image) has no driver; pc's IDE one it has.
 */
function defaultMachineType(options: MachineOptions): MachineType {
  const hasCdrom = options.drives?.some((drive) => drive.media === "cdrom") ?? false;
  return hasCdrom && options.firmware !== "uefi" ? "pc" : DEFAULT_MACHINE_TYPE;
}

/**
 * The accelerator machines of `backend` (default: qemu) will use, and why: forced, probed by
 * booting a kernel under KVM, or the cached verdict.
 */
export function resolveMachineAccelerator(
  options: Omit<ResolveAcceleratorOptions, "probe"> & { backend?: string } = {},
): Promise<AcceleratorVerdict> {
  const { backend, ...rest } = options;
  return resolveAccelerator({ ...rest, probe: findBackend(backend).acceleratorProbe });
}

/**
 * Whether the machine gets a transfer disk for file copies: `transferDisk` if given, else on a
 * corral image or a disk boot that is not a microvm (a start script's guest is not corral's own,
 * and a microvm's virtio-mmio disks would take its place among the guest's disk names).
 */
export function hasTransferDisk(plan: MachinePlan, options: MachineOptions): boolean {
  return (
    options.transferDisk ?? (plan.boot.kind !== "start-script" && plan.machine?.type !== "microvm")
  );
}

/** What a snapshot of the machine records, and what a restore must match. */
export async function machineIdentity(
  plan: MachinePlan,
  options: MachineOptions,
): Promise<MachineIdentity> {
  let source: SnapshotSource;
  if (plan.boot.kind === "start-script") {
    const sha256 = createHash("sha256")
      .update(await readFile(plan.boot.path))
      .digest("hex");
    source = { kind: "start-script", path: plan.boot.path, sha256 };
  } else if (plan.boot.kind === "disk") {
    source = { kind: "disk" };
  } else {
    source = { kind: "image", imageId: plan.boot.imageId, recipeHash: plan.boot.recipeHash };
  }
  return {
    source,
    backend: plan.backend.name,
    vmmVersion: await plan.backend.version(),
    config: {
      accelerator: plan.accelerator.accelerator,
      cpus: options.cpus ?? null,
      memoryMiB: options.memoryMiB ?? null,
      ...(options.maxCpus ? { maxCpus: options.maxCpus } : {}),
      ...(options.maxMemoryMiB ? { maxMemoryMiB: options.maxMemoryMiB } : {}),
      vlans: (options.vlans ?? []).map(({ vlan }) => vlan),
      // A restore needs as many TAP NICs as the snapshot had (their names and MACs may differ).
      ...(options.taps?.length ? { taps: options.taps.length } : {}),
      node: options.node ?? 1,
      allowReboot: options.allowReboot ?? false,
      ...(options.guestAgent ? { guestAgent: true as const } : {}),
      ...(hasTransferDisk(plan, options) ? { transferDisk: true as const } : {}),
      ...profileIdentity(plan, options),
    },
  };
}

/** The profile a restore must have: its devices and the disk its overlay is based on. */
function profileIdentity(
  plan: MachinePlan,
  options: MachineOptions,
): Pick<SnapshotConfig, "machine" | "bootDisk" | "drives"> {
  const { bootDisk } = options;
  return {
    machine: plan.machine ?? null,
    bootDisk: bootDisk ? { path: resolve(bootDisk.path), format: bootDisk.format } : null,
    drives: (options.drives ?? []).map(resolveDrive),
  };
}

/** The options of a machine that restores `manifest`'s snapshot: what the snapshot was made with. */
export function optionsOfSnapshot(manifest: SnapshotManifest): MachineOptions {
  const { config, source } = manifest;
  const { machine, bootDisk, drives } = config;
  return {
    ...(source.kind === "image"
      ? { image: source.imageId }
      : source.kind === "start-script"
        ? { startScript: source.path }
        : { image: null }),
    ...(config.cpus ? { cpus: config.cpus } : {}),
    ...(config.memoryMiB ? { memoryMiB: config.memoryMiB } : {}),
    ...(config.maxCpus ? { maxCpus: config.maxCpus } : {}),
    ...(config.maxMemoryMiB ? { maxMemoryMiB: config.maxMemoryMiB } : {}),
    node: config.node,
    allowReboot: config.allowReboot,
    ...(config.guestAgent ? { guestAgent: true } : {}),
    // A snapshot from before transfer disks restores without one: its devices must not change.
    transferDisk: config.transferDisk === true,
    accel: config.accelerator as Accelerator,
    ...(machine
      ? {
          machineType: machine.type,
          firmware: machine.firmware,
          hypervEnlightenments: machine.hypervEnlightenments,
        }
      : {}),
    ...(bootDisk ? { bootDisk } : {}),
    ...(drives && drives.length > 0 ? { drives } : {}),
  };
}
