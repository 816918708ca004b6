// Start scripts for the machines of a test, from one image, as a NixOS test build makes them:
// one run-<name>-vm per machine, node numbers in the order of the sorted names, one NIC per VLAN,
// and every machine's address baked into the kernel command line (corral.hosts=).

import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { checkMachineName, checkVlan, vlanAddress, vlanMac } from "../network/addressing.ts";
import type { CachedImage } from "./image-cache.ts";
import { loadRecipe } from "./recipe.ts";
import { renderStartScript } from "./start-script.ts";

/** Writes `outDir/run-<name>-vm` for each name; returns the scripts' paths. */
export async function writeMachineScripts(
  image: CachedImage,
  names: readonly string[],
  vlans: readonly number[],
  outDir: string,
): Promise<string[]> {
  for (const name of names) checkMachineName(name);
  if (new Set(names).size !== names.length) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, "machine names must be unique");
  }
  for (const vlan of vlans) checkVlan(vlan);
  const recipe = loadRecipe(image.manifest.recipe);
  await mkdir(outDir, { recursive: true });
  const sorted = [...names].sort();
  // Every machine's address on every VLAN, as NixOS builds them into each node: names resolve
  // under any driver. corral test's own corral.hosts= (in $QEMU_KERNEL_PARAMS) comes later and wins.
  const hosts = sorted.flatMap((name, index) =>
    vlans.map((vlan) => `${vlanAddress(vlan, index + 1)}:${name}`),
  );
  const hostsParam = hosts.length ? ` corral.hosts=${hosts.join(",")}` : "";
  const paths: string[] = [];
  for (const [index, name] of sorted.entries()) {
    const node = index + 1;
    const path = join(outDir, `run-${name}-vm`);
    const script = renderStartScript({
      name,
      recipeHash: image.manifest.recipeHash,
      memoryMiB: recipe.memoryMiB,
      cpus: recipe.cpus,
      kernelParams: `${recipe.kernelParams} systemd.hostname=${name}${hostsParam}`,
      imageDir: image.dir,
      vlanNics: vlans.map((vlan) => ({ vlan, mac: vlanMac(vlan, node) })),
    });
    await writeFile(path, script);
    await chmod(path, 0o755);
    paths.push(path);
  }
  return paths;
}
