// UEFI firmware for q35 VMs: Debian's OVMF (package `ovmf`), its code read-only and shared, its
// variable store copied once into each VM's state folder and kept there (boot entries, settings).
// The plain 4 MiB build: no Secure Boot (its `secboot` variant needs SMM and enrolled keys).

import { constants, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { OVMF_VARS_FILE, requireHostTools } from "../../host/requirements.ts";

const VARS_FILE = "uefi-vars.fd";

/** The VM's own variable store in `stateDir`, copied from OVMF's template unless it exists. */
export async function uefiVarsFor(stateDir: string, vmName: string): Promise<string> {
  requireHostTools(["ovmf"], `${vmName}: UEFI firmware`);
  const vars = join(stateDir, VARS_FILE);
  await copyFile(OVMF_VARS_FILE, vars, constants.COPYFILE_EXCL).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  });
  return vars;
}
