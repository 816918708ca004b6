// Newer nixpkgs drivers' interface: machines as `--vm-names` beside `--vm-start-scripts`, or the
// JSON driver configuration of `--config` ({ vms: { <name>: { name, start_script } }, containers,
// vlans, global_timeout, enable_ssh_backdoor, test_script }), so Nix-built wrappers call corral.

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { NamedStartScript } from "./driver.ts";

/** What a driver configuration file gives a test run. */
export interface DriverConfiguration {
  startScripts: NamedStartScript[];
  vlans: number[];
  /** Seconds. */
  globalTimeout: number | undefined;
  /** The configuration's test script (a path), resolved against the file's folder. */
  testScript: string | undefined;
}

/**
 * `--vm-names` paired with `--vm-start-scripts` (or their `vmNames`/`vmStartScripts`
 * fallbacks): one machine per pair, named by the name. Start scripts alone are named after
 * their files. Throws CORRAL_INVALID_ARGUMENT when the lists differ in length or names come
 * without scripts.
 */
export function pairVmNames(
  names: readonly string[] | undefined,
  scripts: readonly string[] | undefined,
): (string | NamedStartScript)[] | undefined {
  if (!names) return scripts ? [...scripts] : undefined;
  if (!scripts || names.length !== scripts.length) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `--vm-names and --vm-start-scripts must be as many: ${names.length} names, ${scripts?.length ?? 0} start scripts`,
    );
  }
  return names.map((name, index) => ({ name, startScript: scripts[index] as string }));
}

/**
 * Reads a nixpkgs driver configuration (`--config`). Throws CORRAL_NOT_FOUND for a missing file
 * and CORRAL_INVALID_ARGUMENT for one that is not such a configuration, or asks for what corral
 * does not run (containers, the SSH backdoor).
 */
export async function readDriverConfiguration(file: string): Promise<DriverConfiguration> {
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new CorralError(
      error.code === "ENOENT" ? ErrorCodes.NOT_FOUND : ErrorCodes.INVALID_ARGUMENT,
      `driver configuration ${file} cannot be read: ${error.message}`,
      { cause: error },
    );
  });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw bad(file, `it is not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(data)) throw bad(file, "it must be a JSON object");
  const { vms = {}, containers = {}, vlans = [], global_timeout, enable_ssh_backdoor } = data;
  if (!isRecord(vms)) throw bad(file, '"vms" must be an object of { name, start_script }');
  if (!isRecord(containers) || Object.keys(containers).length > 0) {
    throw bad(file, '"containers" must be empty: corral runs QEMU machines, not containers');
  }
  if (enable_ssh_backdoor === true) {
    throw bad(file, '"enable_ssh_backdoor" must be false: corral has no SSH-over-vsock backdoor');
  }
  if (!Array.isArray(vlans) || !vlans.every((vlan) => Number.isInteger(vlan))) {
    throw bad(file, '"vlans" must be a list of VLAN numbers');
  }
  if (
    global_timeout !== undefined &&
    (typeof global_timeout !== "number" || !(global_timeout >= 0))
  ) {
    throw bad(file, '"global_timeout" must be a number of seconds');
  }
  const base = dirname(resolve(file));
  const startScripts = Object.entries(vms).map(([key, vm]) => {
    if (!isRecord(vm) || typeof vm.start_script !== "string") {
      throw bad(file, `"vms.${key}" must be { "name": …, "start_script": … }`);
    }
    const name = typeof vm.name === "string" ? vm.name : key;
    return { name, startScript: resolve(base, vm.start_script) };
  });
  return {
    startScripts,
    vlans: vlans as number[],
    globalTimeout: global_timeout as number | undefined,
    testScript: typeof data.test_script === "string" ? resolve(base, data.test_script) : undefined,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function bad(file: string, why: string): CorralError {
  return new CorralError(
    ErrorCodes.INVALID_ARGUMENT,
    `driver configuration ${file} is not a nixpkgs test driver configuration: ${why}`,
  );
}
