// `corral image prepare-windows`: from a Windows ISO and the virtio-win ISO, unattended-install
// media for a windows-default VM — a small setup ISO (autounattend.xml and the first-logon
// script) and a blank qcow2 disk. The install itself is not verified here (no Windows image can
// run on this host): what is tested is the media.

import { randomInt } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { findProgram } from "../host/find-program.ts";
import { makeDirs } from "../host/make-dirs.ts";
import { requireHostTools } from "../host/requirements.ts";
import { runProgram } from "../host/run-program.ts";
import { type AutounattendOptions, autounattendXml, FIRST_LOGON_SCRIPT } from "./autounattend.ts";
import { isoBootPlatforms, listIsoFiles, makeIso, readIsoSignature } from "./iso-image.ts";
import { firstLogonScript, QEMU_GA_MSI } from "./windows-first-logon.ts";

/** File names in the output folder. */
export const SETUP_ISO = "windows-setup.iso";
export const DISK_FILE = "windows-disk.qcow2";
export const PASSWORD_FILE = "admin-password.txt";
/** The setup ISO's volume label. */
export const SETUP_LABEL = "CORRAL_SETUP";

export const DEFAULT_DISK_GIB = 64;
/** windows-default's minimum disk. */
export const MIN_DISK_GIB = 32;
export const MAX_DISK_GIB = 65_536;

/** virtio-win driver folders setup loads, for the Windows versions corral names. */
const DRIVERS = ["viostor", "vioscsi", "NetKVM", "vioserial"];
const WINDOWS_VERSIONS = ["w11", "w10", "2k22"];

export interface PrepareWindowsOptions
  extends Omit<AutounattendOptions, "adminUser" | "adminPassword" | "driverFolders"> {
  /** The Windows installation ISO (UEFI-bootable). */
  windowsIso: string;
  /** The virtio-win drivers ISO (with guest-agent\qemu-ga-x86_64.msi). */
  virtioWinIso: string;
  /** Where the media go; created when missing. */
  outDir: string;
  /** The blank disk's virtual size in GiB (default 64, at least 32). */
  diskGiB?: number;
  /** The local administrator (default `corral`). */
  adminUser?: string;
  /** Its password; absent: one is generated and written to <outDir>/admin-password.txt (0600). */
  adminPassword?: string;
  /** Replace media already in outDir (the disk may hold an installed Windows). Default false. */
  force?: boolean;
  signal?: AbortSignal;
}

export interface WindowsMedia {
  /** The setup ISO: autounattend.xml and corral\first-logon.ps1 (mode 0600: it holds the password). */
  setupIso: string;
  /** The blank qcow2 disk to install on. */
  disk: string;
  diskGiB: number;
  windowsIso: string;
  virtioWinIso: string;
  adminUser: string;
  /** Where the generated password is, when one was generated. */
  passwordFile: string | undefined;
  /** The virtio-win folders setup loads drivers from (Windows form, relative to its root). */
  driverFolders: string[];
}

/**
 * Checks both ISOs and writes the media into `outDir`; returns where they are. Throws
 * CORRAL_NOT_FOUND for a missing ISO, CORRAL_INVALID_ARGUMENT for a file that is not the ISO it
 * should be or a bad option, CORRAL_CONFLICT when media exist and `force` is not set,
 * CORRAL_HOST_TOOL_MISSING without xorriso or qemu-img. Nothing half-written is left behind.
 */
export async function prepareWindowsMedia(options: PrepareWindowsOptions): Promise<WindowsMedia> {
  const { signal } = options;
  const diskGiB = options.diskGiB ?? DEFAULT_DISK_GIB;
  if (!Number.isInteger(diskGiB) || diskGiB < MIN_DISK_GIB || diskGiB > MAX_DISK_GIB) {
    throw invalid(
      `--disk-gib must be an integer from ${MIN_DISK_GIB} to ${MAX_DISK_GIB}, not ${diskGiB}`,
    );
  }
  const adminUser = options.adminUser ?? "corral";
  const generated = options.adminPassword === undefined ? generateAdminPassword() : undefined;
  const adminPassword = options.adminPassword ?? (generated as string);
  requireHostTools(["xorriso", "qemu-img"], "corral image prepare-windows");
  const windowsIso = await checkWindowsIso(options.windowsIso, signal);
  const { virtioWinIso, driverFolders } = await checkVirtioWinIso(options.virtioWinIso, signal);
  // Built before anything is written, so a bad option leaves no files.
  const xml = autounattendXml({ ...options, adminUser, adminPassword, driverFolders });

  const outDir = resolve(options.outDir);
  await makeDirs(outDir, "the output folder");
  const setupIso = join(outDir, SETUP_ISO);
  const disk = join(outDir, DISK_FILE);
  const passwordPath = join(outDir, PASSWORD_FILE);
  const passwordFile = generated === undefined ? undefined : passwordPath;
  if (!options.force) {
    for (const path of [setupIso, disk, passwordPath]) {
      if (await exists(path)) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `${path} exists; --force replaces it (a disk there may hold an installed Windows)`,
        );
      }
    }
  }
  const staging = await mkdtemp(join(outDir, ".corral-setup-"));
  const partials = [setupIso, disk, ...(passwordFile ? [passwordFile] : [])].map(
    (path) => `${path}.partial`,
  );
  try {
    const source = join(staging, "iso");
    await mkdir(join(source, "corral"), { recursive: true });
    await writeFile(join(source, "autounattend.xml"), xml, { mode: 0o600 });
    await writeFile(join(source, ...FIRST_LOGON_SCRIPT.split("\\")), firstLogonScript());
    await makeIso(source, `${setupIso}.partial`, { label: SETUP_LABEL, ...(signal && { signal }) });
    await chmod(`${setupIso}.partial`, 0o600);
    await runProgram(
      findProgram("qemu-img") as string,
      ["create", "-q", "-f", "qcow2", `${disk}.partial`, `${diskGiB}G`],
      signal ? { signal } : {},
    );
    if (passwordFile) await writeFile(`${passwordFile}.partial`, `${generated}\n`, { mode: 0o600 });
    await rename(`${setupIso}.partial`, setupIso);
    await rename(`${disk}.partial`, disk);
    // A password file left by the media replaced would name the wrong password.
    if (passwordFile) await rename(`${passwordFile}.partial`, passwordFile);
    else await rm(passwordPath, { force: true });
  } finally {
    await rm(staging, { recursive: true, force: true });
    for (const partial of partials) await rm(partial, { force: true });
  }
  return {
    setupIso,
    disk,
    diskGiB,
    windowsIso,
    virtioWinIso,
    adminUser,
    passwordFile,
    driverFolders,
  };
}

/** The absolute path of a Windows installation ISO that boots with UEFI, or why it is not one. */
async function checkWindowsIso(path: string, signal: AbortSignal | undefined): Promise<string> {
  const iso = await checkIsoFile(path, "--iso");
  const problem = windowsIsoProblem({
    files: await listIsoFiles(iso, signal),
    hasUdf: (await readIsoSignature(iso)).hasUdf,
    bootPlatforms: await isoBootPlatforms(iso, signal),
  });
  if (problem) throw invalid(`--iso ${path} ${problem}`);
  return iso;
}

/**
 * Why an ISO is not Windows installation media a windows-default VM can boot, or undefined.
 * Microsoft's media keep their files in UDF (install.wim passes ISO 9660's 4 GiB file limit),
 * which xorriso does not list: a UDF image is taken as it is, an ISO 9660 tree must hold the
 * install image. Either way it needs a UEFI El Torito boot image.
 */
export function windowsIsoProblem(facts: {
  files: readonly string[];
  hasUdf: boolean;
  bootPlatforms: readonly string[];
}): string | undefined {
  const hasInstallImage = facts.files.some((file) =>
    /^\/sources\/install\.(wim|esd|swm)$/i.test(file),
  );
  if (!hasInstallImage && !facts.hasUdf) {
    return "has no sources/install.wim or install.esd: it is not Windows installation media";
  }
  if (!facts.bootPlatforms.includes("UEFI")) {
    return "has no UEFI boot image; windows-default boots with UEFI (OVMF)";
  }
  return undefined;
}

/** The virtio-win ISO's absolute path and the driver folders it has for corral's Windows versions. */
async function checkVirtioWinIso(
  path: string,
  signal: AbortSignal | undefined,
): Promise<{ virtioWinIso: string; driverFolders: string[] }> {
  const virtioWinIso = await checkIsoFile(path, "--virtio-win");
  const files = (await listIsoFiles(virtioWinIso, signal)).map((file) => file.slice(1));
  const agent = QEMU_GA_MSI.replaceAll("\\", "/").toLowerCase();
  if (!files.some((file) => file.toLowerCase() === agent)) {
    throw invalid(
      `--virtio-win ${path} has no ${QEMU_GA_MSI}: it is not a virtio-win ISO (or one too old)`,
    );
  }
  const driverFolders = DRIVERS.flatMap((driver) =>
    WINDOWS_VERSIONS.flatMap((version) => {
      const prefix = `${driver}/${version}/amd64/`.toLowerCase();
      const file = files.find((name) => name.toLowerCase().startsWith(prefix));
      // The ISO's own spelling: Windows is case-blind, but the answer file reads better so.
      return file ? [file.slice(0, prefix.length - 1).replaceAll("/", "\\")] : [];
    }),
  );
  if (!driverFolders.some((folder) => /^vio(stor|scsi)\\/i.test(folder))) {
    throw invalid(
      `--virtio-win ${path} has no viostor or vioscsi drivers for ${WINDOWS_VERSIONS.join(", ")} amd64: setup could not see the disk`,
    );
  }
  return { virtioWinIso, driverFolders };
}

async function checkIsoFile(path: string, flag: string): Promise<string> {
  const absolute = resolve(path);
  const info = await stat(absolute).catch(() => undefined);
  if (!info) throw new CorralError(ErrorCodes.NOT_FOUND, `${flag} ${path}: no such file`);
  if (!info.isFile()) throw invalid(`${flag} ${path} is not a file`);
  if (!(await readIsoSignature(absolute)).isIso) {
    throw invalid(`${flag} ${path} is not an ISO image (no ISO 9660 volume descriptor at 32 KiB)`);
  }
  return absolute;
}

/**
 * A random 16-character password with upper and lower case letters, digits and a symbol (what
 * Windows Server's complexity rule asks), without characters easily misread.
 */
export function generateAdminPassword(): string {
  const sets = ["ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "-_.+="];
  const all = sets.join("");
  const chars = [
    ...sets.map((set) => set[randomInt(set.length)] as string),
    ...Array.from({ length: 12 }, () => all[randomInt(all.length)] as string),
  ];
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j] as string, chars[i] as string];
  }
  return chars.join("");
}

/**
 * The password in the first line of `path` (a trailing CR or LF is not part of it). Throws
 * CORRAL_NOT_FOUND when there is no such file, CORRAL_INVALID_ARGUMENT when its first line is empty.
 */
export async function readAdminPasswordFile(path: string): Promise<string> {
  const content = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new CorralError(
      error.code === "ENOENT" ? ErrorCodes.NOT_FOUND : ErrorCodes.INVALID_ARGUMENT,
      `--admin-password-file ${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`,
    );
  });
  const password = content.split(/\r?\n/)[0] ?? "";
  if (password === "") throw invalid(`--admin-password-file ${path}: its first line is empty`);
  return password;
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

function invalid(message: string): CorralError {
  return new CorralError(ErrorCodes.INVALID_ARGUMENT, message);
}
