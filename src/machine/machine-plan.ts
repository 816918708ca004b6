// What a machine starts from, resolved once per start: its backend, its boot source (the image's
// files or a start script), its accelerator, and the identity a snapshot of it records.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Backend, BootSource } from "../backends/backend.ts";
import { findBackend } from "../backends/registry.ts";
import {
  type AcceleratorVerdict,
  type ResolveAcceleratorOptions,
  resolveAccelerator,
} from "../host/accelerator.ts";
import { requireHostTools } from "../host/requirements.ts";
import { defaultProbeKernel, findImage } from "../images/image-cache.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import type { MachineOptions } from "./machine-options.ts";
import type { MachineIdentity, SnapshotSource } from "./snapshot-manifest.ts";

export interface MachinePlan {
  backend: Backend;
  boot: BootSource;
  accelerator: AcceleratorVerdict;
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
  } else {
    const image = await findImage(options.image ?? DEFAULT_RECIPE);
    boot = {
      kind: "image",
      imageId: image.manifest.id,
      recipeHash: image.manifest.recipeHash,
      dir: image.dir,
      startScript: join(image.dir, image.manifest.startScript),
      kernel: join(image.dir, "vmlinuz"),
    };
    probeKernel = boot.kernel;
  }
  const accelerator = await resolveAccelerator({
    forced: options.accel,
    probeKernel,
    probe: backend.acceleratorProbe,
  });
  return { backend, boot, accelerator };
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
      node: options.node ?? 1,
      allowReboot: options.allowReboot ?? false,
    },
  };
}
