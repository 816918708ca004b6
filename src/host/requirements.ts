// What corral needs on the host, how to tell whether it is there, and the apt-get line that fixes it.

import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { HostToolMissingError } from "../errors.ts";
import { findProgram } from "./find-program.ts";

export type RequirementId =
  | "qemu-system-x86_64"
  | "qemu-img"
  | "vde_switch"
  | "mmdebstrap"
  | "busybox-static"
  | "cpio"
  | "mkfs.ext4"
  | "ovmf"
  | "xorriso"
  | "ip"
  | "nft"
  | "dnsmasq"
  | "tesseract"
  | "firecracker"
  | "cloud-hypervisor";

/** What the manager's bridged networks need (optional: without them VMs use user-mode networking). */
export const NETWORK_REQUIREMENTS: readonly RequirementId[] = ["ip", "nft", "dnsmasq"];

export interface RequirementStatus {
  id: RequirementId;
  /** Debian package that provides it. */
  debianPackage: string;
  isPresent: boolean;
  /** Where it was found, or why it does not count. */
  detail: string;
  /** What corral uses it for. */
  purpose: string;
  /** Only some features need it: `corral doctor` reports it missing but still passes. */
  isOptional: boolean;
}

interface Requirement {
  id: RequirementId;
  debianPackage: string;
  purpose: string;
  isOptional?: boolean;
  /** A VMM of a backend other than the default: checked only when that backend is used. */
  isBackendVmm?: boolean;
  locate(): { path?: string; problem?: string };
}

/**
 * A VMM that Debian does not package: found at $`envVar` or on PATH; its "package" is where to
 * download it, which the apt-get line leaves out.
 */
function vmmProgram(id: RequirementId, envVar: string, releases: string): Requirement {
  return {
    id,
    debianPackage: "",
    purpose: `runs VMs with backend "${id}" (not in Debian: ${releases}, or set ${envVar})`,
    isOptional: true,
    isBackendVmm: true,
    locate: () => {
      const given = process.env[envVar];
      if (!given) return { path: findProgram(id) };
      return given.includes("/") && !existsSync(given)
        ? { problem: `${envVar}=${given} does not exist` }
        : { path: given.includes("/") ? given : findProgram(given) };
    },
  };
}

/** Debian 12's OVMF (package `ovmf`): the firmware code and the template of its variable store. */
export const OVMF_CODE_FILE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS_FILE = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const OVMF_FILES = [OVMF_CODE_FILE, OVMF_VARS_FILE];

function program(
  id: RequirementId,
  debianPackage: string,
  purpose: string,
  isOptional = false,
): Requirement {
  return { id, debianPackage, purpose, isOptional, locate: () => ({ path: findProgram(id) }) };
}

const REQUIREMENTS: readonly Requirement[] = [
  program("qemu-system-x86_64", "qemu-system-x86", "runs the VMs"),
  program("qemu-img", "qemu-utils", "disk images and overlays"),
  program("vde_switch", "vde2", "virtual networks between VMs"),
  program("mmdebstrap", "mmdebstrap", "builds the guest root filesystem"),
  {
    id: "busybox-static",
    debianPackage: "busybox-static",
    purpose: "the guest initramfs",
    locate: () => {
      const path = findProgram("busybox");
      if (!path) return {};
      return isStaticElf(path) ? { path } : { problem: `${path} is dynamically linked` };
    },
  },
  program("cpio", "cpio", "packs the initramfs"),
  program("mkfs.ext4", "e2fsprogs", "makes the guest root disk"),
  {
    id: "ovmf",
    debianPackage: "ovmf",
    purpose: "UEFI firmware (machines with firmware: uefi, e.g. Windows guests)",
    locate: () => {
      const missing = OVMF_FILES.filter((file) => !existsSync(file));
      return missing.length === 0 ? { path: OVMF_FILES.join(", ") } : {};
    },
  },
  {
    id: "xorriso",
    debianPackage: "xorriso",
    purpose: "cloud-init seed ISOs for VMs made from cloud images",
    // genisoimage makes the same ISO from the same arguments.
    locate: () => ({ path: findProgram("xorriso") ?? findProgram("genisoimage") }),
  },
  program("ip", "iproute2", "the manager's bridges and TAP devices (optional)", true),
  program("nft", "nftables", "the manager's NAT, isolation and port forwards (optional)", true),
  program("dnsmasq", "dnsmasq-base", "DHCP and DNS on the manager's networks (optional)", true),
  program(
    "tesseract",
    "tesseract-ocr",
    "OCR of the screen: getScreenText, waitForText (optional)",
    true,
  ),
  vmmProgram(
    "firecracker",
    "CORRAL_FIRECRACKER",
    "https://github.com/firecracker-microvm/firecracker/releases",
  ),
  vmmProgram(
    "cloud-hypervisor",
    "CORRAL_CLOUD_HYPERVISOR",
    "https://github.com/cloud-hypervisor/cloud-hypervisor/releases",
  ),
];

/**
 * Checks every requirement (or the named ones) and says what was found. Without `ids`, the VMMs
 * of the other backends (Firecracker, Cloud Hypervisor) are left out: `corral doctor` reports
 * them per backend.
 */
export function checkRequirements(ids?: readonly RequirementId[]): RequirementStatus[] {
  const chosen = REQUIREMENTS.filter((req) => (ids ? ids.includes(req.id) : !req.isBackendVmm));
  return chosen.map((req) => {
    const { path, problem } = req.locate();
    return {
      id: req.id,
      debianPackage: req.debianPackage,
      purpose: req.purpose,
      isOptional: req.isOptional ?? false,
      isPresent: path !== undefined,
      detail: path ?? problem ?? "not found",
    };
  });
}

/**
 * The exact command that installs the packages behind the missing requirements; a VMM Debian
 * does not package is named with where to get it instead.
 */
export function aptInstallCommand(missing: readonly RequirementStatus[]): string {
  const packages = [...new Set(missing.map((status) => status.debianPackage).filter(Boolean))];
  const unpackaged = missing
    .filter((status) => !status.debianPackage)
    .map((status) => `install ${status.id}: ${status.purpose}`);
  return [
    ...(packages.length > 0
      ? [`apt-get install -y --no-install-recommends ${packages.join(" ")}`]
      : []),
    ...unpackaged,
  ].join("; ");
}

/** Throws HostToolMissingError, with the apt-get fix, unless all `ids` are present. */
export function requireHostTools(ids: readonly RequirementId[], forWhat: string): void {
  const missing = checkRequirements(ids).filter((status) => !status.isPresent);
  if (missing.length === 0) return;
  const names = missing.map((status) => `${status.id} (${status.detail})`).join(", ");
  throw new HostToolMissingError(`${forWhat} needs ${names}`, aptInstallCommand(missing), {
    details: ["Run `corral doctor` to check everything at once."],
  });
}

/** True when the ELF file at `path` has no program interpreter, i.e. is statically linked. */
function isStaticElf(path: string): boolean {
  const header = Buffer.alloc(8192);
  const fd = openSync(path, "r");
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return false;
  const phoff = Number(header.readBigUInt64LE(0x20));
  const phentsize = header.readUInt16LE(0x36);
  const phnum = header.readUInt16LE(0x38);
  const PT_INTERP = 3;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > header.length) return false;
    if (header.readUInt32LE(at) === PT_INTERP) return false;
  }
  return true;
}
