// Decides between KVM and TCG. /dev/kvm existing is not proof that KVM works: on nested or
// PVM-based hosts a standard guest kernel hangs under it. So the backend boots a guest kernel
// under KVM with a short timeout, and the verdict is cached per host (hostname, kernel, CPU, VMM
// version).

import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { hostname, release } from "node:os";
import { join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { cacheDir } from "./paths.ts";
import { writeFileAtomic } from "./write-file-atomic.ts";

export type Accelerator = "kvm" | "tcg";

export interface AcceleratorVerdict {
  /** The accelerator corral will use. */
  accelerator: Accelerator;
  /** Whether KVM works on this host; undefined when it could not be probed yet. */
  isKvmUsable: boolean | undefined;
  /** Why, in words. */
  reason: string;
  /** Where the verdict came from. */
  source: "forced" | "probe" | "cache" | "no-kvm-device" | "not-probed" | "record";
}

export interface ResolveAcceleratorOptions {
  /** `kvm` or `tcg` to skip detection; defaults to $CORRAL_ACCEL. */
  forced?: string | undefined;
  /** A guest kernel to probe KVM with; without one and without a cached verdict, TCG is used. */
  probeKernel?: string | undefined;
  /** Ignore a cached verdict and probe again. */
  reprobe?: boolean;
  /** How the backend probes KVM. */
  probe: AcceleratorProbe;
}

/** A backend's way of telling whether KVM works: it boots a guest kernel under it. */
export interface AcceleratorProbe {
  /** The VMM's version: a new VMM gets a new verdict. */
  vmmVersion(): Promise<string>;
  /** Boots `kernel` under KVM with a short limit; says whether it worked and why. */
  probeKvm(kernel: string): Promise<{ works: boolean; reason: string }>;
}

/** The accelerator to boot with, after the checks described at the top of this file. */
export async function resolveAccelerator(
  options: ResolveAcceleratorOptions,
): Promise<AcceleratorVerdict> {
  const forced = options.forced ?? process.env.CORRAL_ACCEL;
  if (forced) return forcedVerdict(forced);

  const deviceProblem = kvmDeviceProblem();
  if (deviceProblem) {
    return {
      accelerator: "tcg",
      isKvmUsable: false,
      reason: deviceProblem,
      source: "no-kvm-device",
    };
  }
  const key = await hostKey(await options.probe.vmmVersion());
  if (!options.reprobe) {
    const cached = await readCachedVerdict(key);
    if (cached) return { ...cached, source: "cache" };
  }
  if (!options.probeKernel) {
    return {
      accelerator: "tcg",
      isKvmUsable: undefined,
      reason: "not probed yet: no guest kernel to boot (run `corral image build` first)",
      source: "not-probed",
    };
  }
  const probe = await options.probe.probeKvm(options.probeKernel);
  const verdict: AcceleratorVerdict = {
    accelerator: probe.works ? "kvm" : "tcg",
    isKvmUsable: probe.works,
    reason: probe.reason,
    source: "probe",
  };
  await writeCachedVerdict(key, verdict);
  return verdict;
}

function forcedVerdict(forced: string): AcceleratorVerdict {
  if (forced !== "kvm" && forced !== "tcg") {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `unknown accelerator "${forced}" (from --accel or CORRAL_ACCEL): use kvm or tcg`,
    );
  }
  return {
    accelerator: forced,
    isKvmUsable: undefined,
    reason: `forced by --accel or CORRAL_ACCEL=${forced}`,
    source: "forced",
  };
}

function kvmDeviceProblem(): string | undefined {
  if (!existsSync("/dev/kvm")) return "/dev/kvm does not exist";
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return undefined;
  } catch {
    return "/dev/kvm is not readable and writable by this user (add it to the kvm group)";
  }
}

async function hostKey(vmmVersion: string): Promise<string> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  return createHash("sha256")
    .update([hostname(), release(), model, vmmVersion].join("\n"))
    .digest("hex")
    .slice(0, 16);
}

function verdictFile(): string {
  return join(cacheDir(), "accelerator.json");
}

async function readCachedVerdict(key: string): Promise<AcceleratorVerdict | undefined> {
  try {
    const all = JSON.parse(await readFile(verdictFile(), "utf8")) as Record<string, unknown>;
    const entry = all[key] as AcceleratorVerdict | undefined;
    return entry?.accelerator === "kvm" || entry?.accelerator === "tcg" ? entry : undefined;
  } catch {
    return undefined;
  }
}

async function writeCachedVerdict(key: string, verdict: AcceleratorVerdict): Promise<void> {
  await mkdir(cacheDir(), { recursive: true });
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(await readFile(verdictFile(), "utf8")) as Record<string, unknown>;
  } catch {
    // first verdict on this host, or an unreadable file that we replace
  }
  all[key] = verdict;
  await writeFileAtomic(verdictFile(), `${JSON.stringify(all, null, 2)}\n`);
}
