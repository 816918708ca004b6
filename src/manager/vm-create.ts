// Making a VM's record, folder and NICs: its spec from a template, the OS's defaults and the
// request (or, for a clone, from its snapshot), checked against the template's limits and the
// daemon's VM limit. The store's unique name decides between two creates of one name.

import { mkdir, rm, stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { requireUsableBackend } from "../backends/backend-report.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { requireHostTools } from "../host/requirements.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import { newId } from "../store/ids.ts";
import type { Vm, VmOs } from "../store/vm-types.ts";
import { type CloudInitDataOptions, cloudInitFiles } from "./cloud-init-data.ts";
import { writeCloudInitSeed } from "./cloud-init-seed.ts";
import { resolveImage } from "./image-refs.ts";
import { findTemplate, requireTemplate } from "./template-lookup.ts";
import { type VmContext, vmFolder } from "./vm-context.ts";
import { machineOptionsFor } from "./vm-machine-options.ts";
import { attachNics, chooseNetworks, detachNics } from "./vm-nics.ts";
import type { CreateVmRequest } from "./vm-schemas.ts";
import { buildSpec, type ManagedSpec } from "./vm-spec.ts";
import { transitionVm } from "./vm-state-changes.ts";

interface Blueprint {
  os: VmOs;
  template: string | null;
  imageId: string | null;
  sourceSnapshotId: string | null;
  spec: ManagedSpec;
}

/**
 * Records a new VM (state `created`, not started), makes its folder, with its cloud-init seed
 * when it has one, and gives it a NIC (address, MAC, TAP) on each of its networks. Everything is
 * checked first, as Machine will check it, and a step that fails leaves none of it. `os` (from
 * the `/v1/vms/linux` and `/v1/vms/windows` shorthands) overrides the request's. Throws
 * CORRAL_CONFLICT for a taken name, a full network or when the daemon keeps its most VMs
 * already, CORRAL_INVALID_ARGUMENT for a request its template or Machine does not allow (a drive
 * that is not an absolute path to a file, bad cloud-init data), CORRAL_NOT_FOUND for an unknown
 * template, snapshot or network, CORRAL_NETWORK_UNAVAILABLE for networks where the daemon has
 * none, CORRAL_BACKEND_UNAVAILABLE for a backend that cannot run here (`corral doctor`'s reason).
 */
export async function createVm(
  context: VmContext,
  request: CreateVmRequest,
  os?: VmOs,
): Promise<Vm> {
  const blueprint = request.fromSnapshot
    ? cloneBlueprint(context, request, os)
    : await blueprintOf(context, request, os);
  const id = newId();
  const stateDir = vmFolder(context, id);
  const { spec } = blueprint;
  await requireUsableBackend(spec.backend, `VM "${request.name}"`);
  machineOptionsFor(
    { name: request.name, stateDir, spec },
    { isSnapshotStart: blueprint.sourceSnapshotId !== null },
  );
  await requireDriveFiles(spec);
  const seed: CloudInitDataOptions | undefined = spec.cloudInit
    ? { instanceId: id, hostname: request.name, cloudInit: spec.cloudInit }
    : undefined;
  if (seed) {
    cloudInitFiles(seed);
    requireHostTools(["xorriso"], `VM "${request.name}": its cloud-init seed`);
  }
  const vm = context.store.transaction(() => {
    const count = context.store.vms.list().length;
    if (count >= context.maxVms) {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `the daemon keeps at most ${context.maxVms} VMs and has ${count}: delete one, or raise limits.maxVms (--max-vms)`,
      );
    }
    return context.store.vms.create({
      id,
      name: request.name,
      ...blueprint,
      state: "creating",
      stateDir,
      labels: request.labels ?? {},
    });
  });
  context.events.publish({
    type: "vm.state",
    vmId: vm.id,
    data: { name: vm.name, from: null, to: "creating", reason: null, operation: "create" },
  });
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    if (seed) await writeCloudInitSeed(stateDir, seed);
    await attachNics(context, vm.id, blueprint.spec.networks ?? []);
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    context.store.vms.remove(vm.id);
    context.events.publish({ type: "vm.deleted", vmId: vm.id, data: { name: vm.name } });
    throw error;
  }
  transitionVm(context, vm.id, { from: "creating", to: "created" });
  return context.store.vms.get(vm.id);
}

async function blueprintOf(
  context: VmContext,
  request: CreateVmRequest,
  forcedOs: VmOs | undefined,
): Promise<Blueprint> {
  const os = forcedOs ?? request.os ?? templateOs(context, request.template) ?? "linux";
  const template = request.template
    ? requireTemplate(context.store, request.template)
    : findTemplate(context.store, `${os}-default`);
  if (template && template.os !== os) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `template ${template.name} is for ${template.os} VMs; this one is ${os}`,
    );
  }
  if (!template && os === "windows") {
    throw new CorralError(
      ErrorCodes.NOT_FOUND,
      "a Windows VM is made from a template (machine type, firmware, drivers) and there is no windows-default: name one with `template`",
    );
  }
  const imageRef =
    request.image ?? template?.image ?? (os === "linux" ? DEFAULT_RECIPE : undefined);
  const image = await resolveImage(context.store, imageRef);
  return {
    os,
    template: template?.name ?? null,
    imageId: image.kind === "none" ? null : image.storeImageId,
    sourceSnapshotId: null,
    spec: buildSpec(os, template, imageRef, image, {
      ...request,
      networks: chooseNetworks(context, request.networks ?? template?.networks),
    }),
  };
}

function templateOs(context: VmContext, name: string | undefined): VmOs | undefined {
  return name === undefined ? undefined : requireTemplate(context.store, name).os;
}

/**
 * A clone's blueprint: its snapshot's OS, image and spec; only its name and labels are its own,
 * and its networks may differ (as many as the snapshot's VM had: the guest has that many NICs).
 */
function cloneBlueprint(
  context: VmContext,
  request: CreateVmRequest,
  forcedOs: VmOs | undefined,
): Blueprint {
  const snapshot = context.store.snapshots.get(request.fromSnapshot ?? "");
  const { rootDisk: _, ...spec } = snapshot.spec as unknown as ManagedSpec;
  const clash: string[] = (["template", "image", "drives", "cloudInit", "diskGiB"] as const).filter(
    (field) => request[field] !== undefined,
  );
  for (const field of ["cpus", "memoryMiB", "backend"] as const) {
    if (request[field] !== undefined && request[field] !== spec[field]) clash.push(field);
  }
  const os = forcedOs ?? request.os;
  if (os !== undefined && os !== snapshot.os) clash.push("os");

  if (clash.length > 0) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `a clone is made as its snapshot was (${snapshot.os}, ${spec.cpus} vCPUs, ${spec.memoryMiB} MiB): body/${clash[0]} cannot differ; leave out ${clash.join(", ")}`,
    );
  }
  const nicCount = (spec.networks ?? []).length;
  const networks = request.networks ?? spec.networks ?? [];
  if (networks.length !== nicCount) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `a clone has as many NICs as its snapshot's VM had (${nicCount}): body/networks names ${networks.length}`,
    );
  }
  return {
    os: snapshot.os,
    template: null,
    imageId: snapshot.imageId,
    sourceSnapshotId: snapshot.id,
    spec: { ...spec, networks: chooseNetworks(context, networks) },
  };
}

/**
 * Throws CORRAL_INVALID_ARGUMENT naming the first drive that is not an absolute path to a file
 * on this host: the daemon's QEMU opens it, wherever the client runs.
 */
async function requireDriveFiles(spec: ManagedSpec): Promise<void> {
  for (const [index, drive] of spec.drives.entries()) {
    const what = `drives[${index}].path ${JSON.stringify(drive.path)}`;
    if (!isAbsolute(drive.path)) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${what} is not an absolute path: give the file's full path on the daemon's host`,
      );
    }
    const info = await stat(drive.path).catch(() => undefined);
    if (!info?.isFile() && !info?.isBlockDevice()) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${what} ${info ? "is not a file" : "does not exist"} on the daemon's host`,
      );
    }
  }
}

/** Removes a VM's NICs, port forwards, folder and record; its snapshots stay. */
export async function removeVm(context: VmContext, vm: Vm): Promise<void> {
  await detachNics(context, vm);
  await rm(vm.stateDir, { recursive: true, force: true });
  context.store.vms.remove(vm.id);
  context.events.publish({ type: "vm.deleted", vmId: vm.id, data: { name: vm.name } });
}
