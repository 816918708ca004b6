// A cloud-init NoCloud seed for a VM: a small ISO 9660 image labelled `cidata` holding meta-data,
// user-data and network-config, which cloud-init in the guest finds by its label. Made with
// Debian's xorriso (genisoimage works too).
// https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html

import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findProgram } from "../host/find-program.ts";
import { requireHostTools } from "../host/requirements.ts";
import { runProgram } from "../host/run-program.ts";
import { type CloudInitDataOptions, cloudInitFiles } from "./cloud-init-data.ts";

/** The seed's file name in the VM's folder. */
export const SEED_FILE = "seed.iso";

/** The volume label cloud-init's NoCloud datasource looks for. */
export const SEED_LABEL = "cidata";

export interface CloudInitSeedOptions extends CloudInitDataOptions {
  signal?: AbortSignal;
}

/**
 * Writes `<dir>/seed.iso` for a VM and returns its absolute path; attach it to the VM as a
 * read-only CD-ROM (or disk). The files are those of `cloudInitFiles` (how the request's
 * user-data and its users combine is described there). An existing seed is replaced whole: a
 * reader sees the old one or the new one. Throws CORRAL_INVALID_ARGUMENT for bad cloud-init
 * data, CORRAL_HOST_TOOL_MISSING without xorriso or genisoimage, CORRAL_HOST_COMMAND_FAILED when
 * it fails.
 */
export async function writeCloudInitSeed(
  dir: string,
  options: CloudInitSeedOptions,
): Promise<string> {
  const files = cloudInitFiles(options);
  requireHostTools(["xorriso"], "a cloud-init seed");
  const target = resolve(dir, SEED_FILE);
  const partial = `${target}.${process.pid}.partial`;
  const source = await mkdtemp(join(tmpdir(), "corral-seed-"));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(source, name), text);
    const xorriso = findProgram("xorriso");
    const [program, ...emulation] = xorriso ? [xorriso, "-as", "mkisofs"] : ["genisoimage"];
    // Joliet and Rock Ridge keep the names as they are (plain ISO 9660 would make them USER_DAT).
    await runProgram(
      program as string,
      [
        ...emulation,
        "-quiet",
        "-output",
        partial,
        "-volid",
        SEED_LABEL,
        "-joliet",
        "-rock",
        source,
      ],
      options.signal ? { signal: options.signal } : {},
    );
    await rename(partial, target);
    return target;
  } finally {
    await rm(source, { recursive: true, force: true });
    await rm(partial, { force: true });
  }
}
