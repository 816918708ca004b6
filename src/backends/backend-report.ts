// What `corral doctor` says of each backend: whether its VMM is installed (and its version),
// whether KVM works for it, and so whether VMs can run with it here, and if not, why.

import { CorralError, ErrorCodes } from "../errors.ts";
import { type AcceleratorVerdict, resolveAccelerator } from "../host/accelerator.ts";
import { checkRequirements } from "../host/requirements.ts";
import type { Backend } from "./backend.ts";
import { allBackends, DEFAULT_BACKEND, findBackend } from "./registry.ts";

/** Backends that run under KVM only (no TCG fallback). */
const KVM_ONLY = new Set(["firecracker", "cloud-hypervisor"]);

export interface BackendReport {
  name: string;
  isDefault: boolean;
  /** Where its VMM binary is, or why it does not count. */
  binary: { isFound: boolean; detail: string };
  /** The VMM's version line; undefined when it is missing or would not say. */
  version: string | undefined;
  /** Whether KVM works for it; undefined when not probed. */
  isKvmUsable: boolean | undefined;
  kvmReason: string;
  /** Whether VMs can run with this backend here. */
  isUsable: boolean;
  /** Why not, or what it will use. */
  reason: string;
}

export interface ReportOptions {
  reprobe?: boolean;
  /** A guest kernel to probe KVM with (the default image's). */
  probeKernel?: string | undefined;
}

/** One report per registered backend, the default first. */
export async function reportBackends(options: ReportOptions = {}): Promise<BackendReport[]> {
  const [first, ...others] = allBackends();
  if (!first) return [];
  const main = await reportBackend(first, options, undefined);
  const hint = main.binary.isFound ? `${first.name}'s probe says: ${main.kvmReason}` : undefined;
  return [main, ...(await Promise.all(others.map((b) => reportBackend(b, options, hint))))];
}

/**
 * Throws CORRAL_BACKEND_UNAVAILABLE with `corral doctor`'s reason when backend `name` cannot run
 * VMs here (its VMM is missing, or it needs KVM and KVM is not usable); `what` names the VM in
 * the message. The default backend is taken as it is: its own start says what it lacks. Throws
 * CORRAL_INVALID_ARGUMENT for an unknown backend.
 */
export async function requireUsableBackend(name: string, what: string): Promise<void> {
  const backend = findBackend(name);
  if (backend.name === DEFAULT_BACKEND) return;
  const report = await reportBackend(backend, {}, undefined);
  if (report.isUsable) return;
  throw new CorralError(
    ErrorCodes.BACKEND_UNAVAILABLE,
    `${what}: the ${name} backend cannot run here: ${report.reason} (\`corral doctor\` reports every backend)`,
  );
}

async function reportBackend(
  backend: Backend,
  options: ReportOptions,
  kvmHint: string | undefined,
): Promise<BackendReport> {
  const [vmm] = checkRequirements([backend.hostTools[0]]);
  const isFound = vmm?.isPresent ?? false;
  const base = {
    name: backend.name,
    isDefault: backend.name === DEFAULT_BACKEND,
    binary: { isFound, detail: vmm?.detail ?? "not found" },
  };
  if (!isFound) {
    return {
      ...base,
      version: undefined,
      isKvmUsable: undefined,
      kvmReason: `not probed: the VMM is missing${kvmHint ? ` (${kvmHint})` : ""}`,
      isUsable: false,
      reason: `${backend.hostTools[0]} is missing (${vmm?.purpose ?? ""})`,
    };
  }
  const version = await backend.version().catch(() => undefined);
  const verdict: AcceleratorVerdict = await resolveAccelerator({
    probeKernel: options.probeKernel,
    reprobe: options.reprobe ?? false,
    probe: backend.acceleratorProbe,
  }).catch((error: unknown) => ({
    accelerator: "tcg",
    isKvmUsable: undefined,
    reason: `the probe failed: ${(error as Error).message}`,
    source: "not-probed",
  }));
  const needsKvm = KVM_ONLY.has(backend.name);
  const isUsable = !needsKvm || verdict.accelerator === "kvm";
  return {
    ...base,
    version,
    isKvmUsable: verdict.isKvmUsable,
    kvmReason: verdict.reason,
    isUsable,
    reason: isUsable
      ? `VMs run under ${verdict.accelerator === "kvm" ? "KVM" : "TCG"}`
      : `${backend.name} needs KVM, and KVM is not usable: ${verdict.reason}`,
  };
}
