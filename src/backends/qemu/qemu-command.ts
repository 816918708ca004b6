// How QEMU is started for a spec: through the VM's start script (Nix-built ones, and corral
// images on the plain `pc` machine: the test driver's path), or as qemu-system-x86_64 with the
// machine corral describes itself (direct-args.ts) for the profiles a start script cannot give:
// microvm, q35, UEFI, Hyper-V flags, a disk booted by its firmware. The start-script conventions
// (NIX_DISK_IMAGE, QEMU_VDE_SOCKET_<n>, SHARED_DIR, QEMU_KERNEL_PARAMS, TMPDIR) live here too.

import { access } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CorralError, ErrorCodes } from "../../errors.ts";
import { type Capability, DEFAULT_MACHINE_TYPE, type VmMachine, type VmSpec } from "../backend.ts";
import { cpuFeatures, directArgs, driveArgs, isMmio } from "./direct-args.ts";
import { guestMemoryFor } from "./memory-backend.ts";
import { createQemuDisk } from "./qemu-disks.ts";
import { QEMU_CAPABILITIES } from "./qemu-vm.ts";
import type { RuntimeArgsOptions } from "./runtime-args.ts";
import { uefiVarsFor } from "./uefi-firmware.ts";

/** A microvm has no graphics card or keyboard, and no hotplug bus to grow on. */
const MICROVM_LACKS: readonly Capability[] = ["screenshot", "keys", "resize"];

/** The root disk of a VM booted without its start script, when the spec names none. */
const ROOT_DISK = "root.qcow2";

export interface QemuCommand {
  /** The program run: the start script, or qemu-system-x86_64. */
  file: string;
  /** Its arguments before corral's runtime arguments. */
  args: string[];
  env: NodeJS.ProcessEnv;
  /** What corral's runtime arguments need to know of the machine. */
  runtime: Pick<RuntimeArgsOptions, "nics" | "isMmio" | "cpuFeatures" | "memory" | "machineType">;
}

/** What a VM with `machine` (undefined: a start script's own) can do. */
export function qemuCapabilities(machine: VmMachine | undefined): ReadonlySet<Capability> {
  if (machine?.type !== "microvm") return QEMU_CAPABILITIES;
  return new Set([...QEMU_CAPABILITIES].filter((c) => !MICROVM_LACKS.includes(c)));
}

/** The machine of a spec that names none: what corral's start scripts run. */
const SCRIPT_MACHINE: VmMachine = {
  type: DEFAULT_MACHINE_TYPE,
  firmware: "bios",
  hypervEnlightenments: false,
};

/** The command that starts QEMU for `spec`; makes the root disk and UEFI store it needs. */
export async function qemuCommand(spec: VmSpec): Promise<QemuCommand> {
  const machine = spec.machine ?? SCRIPT_MACHINE;
  const runtime = {
    isMmio: isMmio(machine),
    cpuFeatures: cpuFeatures(machine, spec.accelerator),
    memory: guestMemoryFor(spec),
    machineType: machine.type,
  };
  const { boot } = spec;
  const isScriptMachine =
    machine.type === SCRIPT_MACHINE.type &&
    machine.firmware === "bios" &&
    !machine.hypervEnlightenments;
  if (boot.kind === "start-script" || (boot.kind === "image" && isScriptMachine)) {
    return {
      file: boot.kind === "image" ? boot.startScript : boot.path,
      args: driveArgs(spec.drives ?? [], machine),
      env: scriptEnv(spec),
      // A start script brings its own VLAN NICs (see scriptEnv); a corral image's are added, and
      // TAP NICs to either.
      runtime: {
        ...runtime,
        nics: boot.kind === "image" ? spec.nics : spec.nics.filter((nic) => nic.kind === "tap"),
      },
    };
  }
  const rootDisk = spec.rootDisk ?? (await defaultRootDisk(spec));
  const uefiVars =
    machine.firmware === "uefi" ? await uefiVarsFor(spec.stateDir, spec.name) : undefined;
  return {
    file: "qemu-system-x86_64",
    args: directArgs({ spec, machine, rootDisk, uefiVars }),
    env: { ...process.env, ...spec.env },
    runtime: { ...runtime, nics: spec.nics },
  };
}

/** A corral image's root overlay in the state folder, made once: what its start script does. */
async function defaultRootDisk(spec: VmSpec): Promise<string> {
  const direct = spec.boot.kind === "image" ? spec.boot.direct : undefined;
  if (!direct) {
    const what =
      spec.boot.kind === "image"
        ? `image ${spec.boot.imageId} was built before corral could boot it without its start script: rebuild it with \`corral image build\``
        : "a disk boot needs its root disk";
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `${spec.name}: ${what}`);
  }
  const path = join(spec.stateDir, ROOT_DISK);
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (!exists) await createQemuDisk(path, { base: { path: direct.rootDisk, format: "qcow2" } });
  return path;
}

/** The start script's environment: the NixOS conventions for disk, VLANs, shares and kernel. */
function scriptEnv(spec: VmSpec): NodeJS.ProcessEnv {
  const ownNics = spec.boot.kind === "start-script";
  const kernelParams = [...spec.kernelParams, spec.env.QEMU_KERNEL_PARAMS].filter(Boolean);
  return {
    ...process.env,
    ...(spec.sharedDir ? { SHARED_DIR: resolve(spec.sharedDir) } : {}),
    ...(spec.rootDisk ? { NIX_DISK_IMAGE: spec.rootDisk } : {}),
    ...(ownNics
      ? Object.fromEntries(
          spec.nics.flatMap((nic) =>
            nic.kind === "tap" ? [] : [[`QEMU_VDE_SOCKET_${nic.vlan}`, nic.switchSocket]],
          ),
        )
      : {}),
    ...spec.env,
    ...(kernelParams.length > 0 ? { QEMU_KERNEL_PARAMS: kernelParams.join(" ") } : {}),
    TMPDIR: spec.stateDir,
    USE_TMPDIR: "1",
  };
}
