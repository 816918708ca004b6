// The host check behind `corral doctor`: required programs and files, and the accelerator.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { CorralError, ErrorCodes } from "../errors.ts";
import {
  type AcceleratorProbe,
  type AcceleratorVerdict,
  resolveAccelerator,
} from "./accelerator.ts";
import { checkNetworking, type NetworkingSupport } from "./net-capability.ts";
import {
  aptInstallCommand,
  checkRequirements,
  type RequirementId,
  type RequirementStatus,
} from "./requirements.ts";

export interface DoctorReport {
  /** False when a required program or file is missing (optional ones do not count). */
  isReady: boolean;
  requirements: RequirementStatus[];
  /** Undefined when the VMM itself is missing, so nothing could be probed. */
  accelerator: AcceleratorVerdict | undefined;
  /** Whether the manager can give VMs bridged networks, or they use user-mode networking. */
  networks: NetworkingSupport;
  /** The command that installs what is missing, optional things included. */
  fix: string | undefined;
}

export interface DiagnoseOptions {
  /** Probe KVM again instead of using the cached verdict. */
  reprobe?: boolean;
  /** A guest kernel to probe KVM with (the default image's). */
  probeKernel?: string | undefined;
  /** The default backend's KVM probe, and the programs it needs to run. */
  probe: AcceleratorProbe;
  probeNeeds: readonly RequirementId[];
}

export async function diagnoseHost(options: DiagnoseOptions): Promise<DoctorReport> {
  const requirements = checkRequirements();
  const missing = requirements.filter((status) => !status.isPresent);
  const canProbe = options.probeNeeds.every((id) =>
    requirements.some((status) => status.id === id && status.isPresent),
  );
  let accelerator: AcceleratorVerdict | undefined;
  if (canProbe) {
    accelerator = await resolveAccelerator({
      probeKernel: options.probeKernel,
      reprobe: options.reprobe ?? false,
      probe: options.probe,
    });
  }
  return {
    isReady: missing.every((status) => status.isOptional),
    requirements,
    accelerator,
    networks: checkNetworking(),
    fix: missing.length > 0 ? aptInstallCommand(missing) : undefined,
  };
}

/** Installs the Debian packages behind missing requirements with apt-get; output goes to stderr. */
export async function installMissingPackages(): Promise<string[]> {
  const missing = checkRequirements().filter((status) => !status.isPresent);
  const packages = [...new Set(missing.map((status) => status.debianPackage))];
  if (packages.length === 0) return [];
  if (process.getuid?.() !== 0) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `installing packages needs root; run: sudo ${aptInstallCommand(missing)}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await aptGet(["update", "-q"], env);
  await aptGet(["install", "-y", "-q", "--no-install-recommends", ...packages], env);
  return packages;
}

async function aptGet(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn("apt-get", args, { env, stdio: ["ignore", process.stderr, process.stderr] });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) {
    throw new CorralError(
      ErrorCodes.HOST_COMMAND_FAILED,
      `apt-get ${args.join(" ")} exited with code ${code}`,
    );
  }
}
