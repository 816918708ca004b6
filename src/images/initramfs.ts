// Builds the small initramfs: static busybox, the recipe's init, and the virtio modules it loads.

import { chmod, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { findProgram } from "../host/find-program.ts";
import { runProgram } from "../host/run-program.ts";

export interface InitramfsOptions {
  /** The root filesystem holding /lib/modules/<release> with a modules.dep. */
  rootfs: string;
  kernelRelease: string;
  /** Module names to load, their dependencies are added first. */
  modules: readonly string[];
  /** The recipe's init script. */
  initScript: string;
  /** Scratch folder for the tree to pack. */
  workDir: string;
  /** The uncompressed newc cpio to write (uncompressed: unpacking under TCG is the slow part). */
  output: string;
}

/** Writes the initramfs; returns the modules it loads, in load order. */
export async function buildInitramfs(options: InitramfsOptions): Promise<string[]> {
  const moduleDir = join(options.rootfs, "lib/modules", options.kernelRelease);
  const depends = parseModulesDep(await readFile(join(moduleDir, "modules.dep"), "utf8"));
  const order = moduleLoadOrder(depends, options.modules);

  const tree = options.workDir;
  for (const dir of ["bin", "dev", "proc", "sys", "newroot", "etc", "lib/modules"]) {
    await mkdir(join(tree, dir), { recursive: true });
  }
  const busybox = findProgram("busybox");
  if (!busybox)
    throw new CorralError(ErrorCodes.HOST_TOOL_MISSING, "busybox-static is not installed");
  await copyFile(busybox, join(tree, "bin/busybox"));
  await chmod(join(tree, "bin/busybox"), 0o755);
  await copyFile(options.initScript, join(tree, "init"));
  await chmod(join(tree, "init"), 0o755);
  for (const module of order) {
    await mkdir(join(tree, "lib/modules", dirname(module)), { recursive: true });
    await copyFile(join(moduleDir, module), join(tree, "lib/modules", module));
  }
  await writeFile(join(tree, "etc/modules-order"), `${order.join("\n")}\n`);

  // Sorted names, fixed owner and a fixed mtime make the archive reproducible.
  const { stdout: files } = await runProgram("find", [".", "-print0"], { cwd: tree });
  const list = files.split("\0").filter(Boolean).sort().join("\0");
  await runProgram("touch", ["-h", "-d", "@0", ...files.split("\0").filter(Boolean)], {
    cwd: tree,
  });
  await runProgram(
    "sh",
    [
      "-c",
      'cpio --quiet --null --create --format=newc --reproducible --owner=0:0 >"$1"',
      "sh",
      options.output,
    ],
    { cwd: tree, input: `${list}\0` },
  );
  return order;
}

/** modules.dep: `path.ko: dep1.ko dep2.ko` per line → map from path to its dependencies. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const [path, rest] = line.split(":");
    if (!path || rest === undefined) continue;
    result.set(path.trim(), rest.trim().split(/\s+/).filter(Boolean));
  }
  return result;
}

/**
 * The module paths to insmod, dependencies first. modules.dep lists each module's full
 * dependency closure with the one to load first last, as modprobe reads it.
 */
export function moduleLoadOrder(
  depends: Map<string, string[]>,
  names: readonly string[],
): string[] {
  const byName = new Map<string, string>();
  for (const path of depends.keys()) byName.set(moduleName(path), path);
  const order: string[] = [];
  for (const name of names) {
    const path = byName.get(name.replace(/-/g, "_"));
    if (!path) {
      throw new CorralError(
        ErrorCodes.IMAGE_BUILD_FAILED,
        `kernel module ${name} not found in modules.dep`,
      );
    }
    for (const dep of [...(depends.get(path) ?? [])].reverse()) {
      if (!order.includes(dep)) order.push(dep);
    }
    if (!order.includes(path)) order.push(path);
  }
  return order;
}

function moduleName(path: string): string {
  return basename(path)
    .replace(/\.ko(\.(xz|zst|gz))?$/, "")
    .replace(/-/g, "_");
}
