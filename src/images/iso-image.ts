// ISO 9660 images on the host: recognise one by its volume descriptors, list its files and boot
// images with xorriso, and make a small one from a folder (xorriso, or genisoimage with the same
// arguments).

import { open } from "node:fs/promises";
import { HostToolMissingError } from "../errors.ts";
import { findProgram } from "../host/find-program.ts";
import { requireHostTools } from "../host/requirements.ts";
import { runProgram } from "../host/run-program.ts";

const SECTOR_BYTES = 2048;
/** Volume descriptors start at sector 16; each holds its standard identifier at byte 1. */
const FIRST_DESCRIPTOR_SECTOR = 16;
const DESCRIPTORS_READ = 16;

export interface IsoSignature {
  /** An ISO 9660 primary volume descriptor (`CD001`) is where ECMA-119 puts it. */
  isIso: boolean;
  /** The UDF volume recognition sequence (`NSR02`/`NSR03`, ECMA-167) follows it. */
  hasUdf: boolean;
}

/** What the volume descriptors of the file at `path` say it is (reads 32 KiB from 32 KiB on). */
export async function readIsoSignature(path: string): Promise<IsoSignature> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(DESCRIPTORS_READ * SECTOR_BYTES);
    const { bytesRead } = await handle.read(
      buffer,
      0,
      buffer.length,
      FIRST_DESCRIPTOR_SECTOR * SECTOR_BYTES,
    );
    const ids = [];
    for (let at = 0; at + 6 <= bytesRead; at += SECTOR_BYTES) {
      ids.push(buffer.toString("latin1", at + 1, at + 6));
    }
    return {
      isIso: ids[0] === "CD001",
      hasUdf: ids.includes("NSR02") || ids.includes("NSR03"),
    };
  } finally {
    await handle.close();
  }
}

/**
 * The files in the ISO 9660 tree (Rock Ridge or Joliet names when it has them) of the image at
 * `path`, as absolute paths (`/sources/install.wim`). A UDF-only tree is not listed: Windows
 * media keep their real files in UDF. Needs xorriso.
 */
export async function listIsoFiles(path: string, signal?: AbortSignal): Promise<string[]> {
  const { stdout } = await runProgram(
    xorriso("listing an ISO's files"),
    ["-abort_on", "FAILURE", "-indev", path, "-find", "/", "-type", "f"],
    signal ? { signal } : {},
  );
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("'"))
    .map(unquoteShellWord);
}

/** The platforms of the image's El Torito boot entries (`BIOS`, `UEFI`…); none when it does not boot. */
export async function isoBootPlatforms(path: string, signal?: AbortSignal): Promise<string[]> {
  const { stdout } = await runProgram(
    xorriso("reading an ISO's boot entries"),
    ["-abort_on", "FAILURE", "-indev", path, "-report_el_torito", "plain"],
    signal ? { signal } : {},
  );
  return [...stdout.matchAll(/^El Torito boot img :\s+\d+\s+(\S+)/gm)].map(
    (match) => match[1] ?? "",
  );
}

export interface MakeIsoOptions {
  /** The volume label (ISO 9660 d-characters: A–Z, 0–9, `_`; at most 32). */
  label: string;
  signal?: AbortSignal;
}

/**
 * Writes an ISO 9660 image of folder `source` to `output`, with Joliet (what Windows reads) and
 * Rock Ridge names so file names stay as they are. Throws CORRAL_HOST_TOOL_MISSING without
 * xorriso or genisoimage, CORRAL_HOST_COMMAND_FAILED when it fails.
 */
export async function makeIso(
  source: string,
  output: string,
  options: MakeIsoOptions,
): Promise<void> {
  requireHostTools(["xorriso"], "making an ISO image");
  const xorrisoPath = findProgram("xorriso");
  const [program, ...emulation] = xorrisoPath ? [xorrisoPath, "-as", "mkisofs"] : ["genisoimage"];
  await runProgram(
    program as string,
    [
      ...emulation,
      "-quiet",
      "-output",
      output,
      "-volid",
      options.label,
      "-joliet",
      "-rock",
      source,
    ],
    options.signal ? { signal: options.signal } : {},
  );
}

function xorriso(forWhat: string): string {
  const path = findProgram("xorriso");
  if (!path) {
    throw new HostToolMissingError(
      `${forWhat} needs xorriso`,
      "apt-get install -y --no-install-recommends xorriso",
    );
  }
  return path;
}

/** A word as xorriso prints it: single-quoted, a quote inside written `'"'"'`. */
function unquoteShellWord(word: string): string {
  return word.slice(1, -1).replaceAll(`'"'"'`, "'");
}
