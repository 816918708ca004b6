// Builds a guest image from a recipe into the cache: root filesystem (mmdebstrap), kernel,
// initramfs, qcow2 root disk, start script and manifest. A build works in a `.partial-*` folder
// and renames it into place at the end, so the cache never holds a half-written entry.

import { chmod, copyFile, mkdir, open, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AbortedError, CorralError, ErrorCodes } from "../errors.ts";
import { shellQuote } from "../guest/shell-quote.ts";
import { imagesDir } from "../host/paths.ts";
import { requireHostTools } from "../host/requirements.ts";
import { runProgram } from "../host/run-program.ts";
import { SupervisedProcess } from "../host/supervised-process.ts";
import {
  type CachedImage,
  entryDir,
  findImage,
  imageId,
  PARTIAL_PREFIX,
  removeAbandonedBuilds,
  removeBuildDir,
} from "./image-cache.ts";
import { buildInitramfs } from "./initramfs.ts";
import {
  artifactNames,
  hashFile,
  type ImageManifest,
  MANIFEST_FORMAT,
  readManifest,
  verifyArtifacts,
  writeManifest,
} from "./manifest.ts";
import { type ProgressListener, stage } from "./progress.ts";
import { loadRecipe, type Recipe } from "./recipe.ts";
import { renderStartScript } from "./start-script.ts";

export interface BuildImageOptions {
  /** Rebuild even when a verified entry exists. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface BuildImageResult {
  image: CachedImage;
  /** True when the cache already held a verified entry and nothing was built. */
  wasCached: boolean;
  /** Why an existing entry was rebuilt, if one was. */
  rebuiltBecause?: string;
}

const DEFAULT_MIRROR = "http://deb.debian.org/debian";
const DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security";

/** Builds recipe `name` unless the cache holds a verified build of it. */
export async function buildImage(
  name: string,
  options: BuildImageOptions = {},
): Promise<BuildImageResult> {
  const recipe = loadRecipe(name);
  const finalDir = entryDir(recipe);
  let rebuiltBecause: string | undefined;
  const existing = await readManifest(finalDir);
  if (existing && !options.force) {
    const problems = await stage(
      options.onProgress,
      "verify",
      `checking cached ${existing.id}`,
      () => verifyArtifacts(finalDir, existing),
    );
    if (problems.length === 0) {
      return { image: { dir: finalDir, manifest: existing, isCurrent: true }, wasCached: true };
    }
    rebuiltBecause = problems.map((p) => `${p.file}: ${p.problem}`).join("; ");
  } else if (options.force && existing) {
    rebuiltBecause = "--force";
  }

  if (process.getuid?.() !== 0) {
    throw new CorralError(
      ErrorCodes.IMAGE_BUILD_FAILED,
      "building an image needs root (mmdebstrap builds the root filesystem as root); run it as root",
    );
  }
  requireHostTools(
    ["mmdebstrap", "busybox-static", "cpio", "mkfs.ext4", "qemu-img"],
    "corral image build",
  );

  await mkdir(imagesDir(), { recursive: true });
  await removeAbandonedBuilds();
  const work = join(imagesDir(), `${PARTIAL_PREFIX}${imageId(recipe)}-${process.pid}`);
  await removeBuildDir(work);
  const out = join(work, "out");
  await mkdir(out, { recursive: true });
  try {
    const manifest = await buildInto(recipe, work, out, options);
    await removeBuildDir(finalDir);
    await rename(out, finalDir);
    return {
      image: { dir: finalDir, manifest, isCurrent: true },
      wasCached: false,
      ...(rebuiltBecause ? { rebuiltBecause } : {}),
    };
  } finally {
    await removeBuildDir(work);
  }
}

async function buildInto(
  recipe: Recipe,
  work: string,
  out: string,
  options: BuildImageOptions,
): Promise<ImageManifest> {
  const started = performance.now();
  const { onProgress, signal } = options;
  const rootfs = join(work, "rootfs");
  const meta = join(work, "meta");
  await mkdir(meta);
  const checkAbort = () => {
    if (signal?.aborted) throw new AbortedError(`image build ${recipe.name}: aborted`);
  };

  await stage(
    onProgress,
    "rootfs",
    `mmdebstrap ${recipe.suite} with ${recipe.packages.length} packages and the kernel`,
    (info) => runMmdebstrap(recipe, rootfs, meta, info, signal),
  );
  checkAbort();
  const kernelRelease = (await readFile(join(meta, "kernel-release"), "utf8")).trim();
  await copyFile(join(meta, "vmlinuz"), join(out, "vmlinuz"));

  await stage(onProgress, "initramfs", `busybox and ${recipe.initramfsModules.join(", ")}`, () =>
    buildInitramfs({
      rootfs,
      kernelRelease,
      modules: recipe.initramfsModules,
      initScript: join(recipe.dir, "init"),
      workDir: join(work, "initramfs"),
      output: join(out, "initrd"),
    }),
  );
  checkAbort();

  await stage(
    onProgress,
    "disk",
    `ext4 root disk of ${recipe.diskSizeMiB} MiB as qcow2`,
    async () => {
      const raw = join(work, "root.raw");
      const file = await open(raw, "w");
      await file.truncate(recipe.diskSizeMiB * 1024 * 1024);
      await file.close();
      await runProgram("mkfs.ext4", ["-q", "-F", "-L", "corral-root", "-d", rootfs, raw], {
        ...(signal ? { signal } : {}),
      });
      await runProgram(
        "qemu-img",
        ["convert", "-f", "raw", "-O", "qcow2", raw, join(out, "root.qcow2")],
        {
          ...(signal ? { signal } : {}),
        },
      );
    },
  );
  checkAbort();

  return stage(onProgress, "manifest", "start script and checksums", async () => {
    const startScript = `run-${recipe.name}-vm`;
    await writeFile(
      join(out, startScript),
      renderStartScript({
        name: recipe.name,
        recipeHash: recipe.hash,
        memoryMiB: recipe.memoryMiB,
        cpus: recipe.cpus,
        kernelParams: recipe.kernelParams,
      }),
    );
    await chmod(join(out, startScript), 0o755);
    const artifacts: ImageManifest["artifacts"] = {};
    for (const name of artifactNames({ startScript }))
      artifacts[name] = await hashFile(join(out, name));
    const manifest: ImageManifest = {
      format: MANIFEST_FORMAT,
      id: imageId(recipe),
      recipe: recipe.name,
      recipeHash: recipe.hash,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((performance.now() - started) / 100) / 10,
      kernelRelease,
      startScript,
      artifacts,
      packages: await readPackageVersions(meta),
      hostTools: { busybox: await busyboxVersion() },
    };
    await writeManifest(out, manifest);
    return manifest;
  });
}

async function runMmdebstrap(
  recipe: Recipe,
  rootfs: string,
  meta: string,
  info: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const mirror = process.env.CORRAL_DEBIAN_MIRROR || DEFAULT_MIRROR;
  const security = process.env.CORRAL_DEBIAN_SECURITY_MIRROR || DEFAULT_SECURITY_MIRROR;
  const sources = recipe.sources.map((line) =>
    line.replace("{mirror}", mirror).replace("{security}", security),
  );
  const customize = join(recipe.dir, "customize.sh");
  const args = [
    "--mode=root",
    "--variant=minbase",
    "--format=directory",
    '--aptopt=APT::Install-Recommends "false"',
    ...recipe.pathExcludes.map((path) => `--dpkgopt=path-exclude=${path}`),
    `--include=${recipe.packages.join(",")}`,
    `--customize-hook=sh ${shellQuote(customize)} "$1" ${shellQuote(meta)} ${shellQuote(recipe.kernelPackage)}`,
    ...recipe.layers.map(
      (layer) => `--customize-hook=sh ${shellQuote(join(layer, "customize.sh"))} "$1"`,
    ),
    recipe.suite,
    rootfs,
    sources.join("\n"),
  ];
  const mmdebstrap = await SupervisedProcess.spawn("mmdebstrap", args, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  // mmdebstrap unmounts what it mounted when it gets SIGTERM; give it time before SIGKILL.
  const onAbort = () => void mmdebstrap.stop(30_000);
  signal?.addEventListener("abort", onAbort, { once: true });
  const log: string[] = [];
  const collect = (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return;
    createInterface({ input: stream }).on("line", (line) => {
      log.push(line);
      if (line.startsWith("I: ")) info(line.slice(3));
    });
  };
  collect(mmdebstrap.child.stdout);
  collect(mmdebstrap.child.stderr);
  try {
    const exit = await mmdebstrap.exited;
    if (signal?.aborted) throw new AbortedError(`image build ${recipe.name}: aborted`);
    if (exit.code !== 0) {
      throw new CorralError(
        ErrorCodes.IMAGE_BUILD_FAILED,
        `mmdebstrap failed (${exit.signal ?? `exit code ${exit.code}`})`,
        {
          details: ["Last lines of its output:", ...log.slice(-25).map((line) => `  | ${line}`)],
        },
      );
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

async function readPackageVersions(meta: string): Promise<Record<string, string>> {
  const packages: Record<string, string> = {};
  for (const file of ["packages.tsv", "kernel-package.tsv"]) {
    for (const line of (await readFile(join(meta, file), "utf8")).split("\n")) {
      const [name, version] = line.split("\t");
      if (name && version) packages[name] = version;
    }
  }
  return packages;
}

async function busyboxVersion(): Promise<string> {
  const { stdout } = await runProgram("busybox", ["--help"]).catch(() => ({ stdout: "" }));
  return stdout.split("\n")[0]?.trim() ?? "unknown";
}

/** The cached image `nameOrId`, built first when it is a recipe that has no build yet. */
export async function ensureImage(
  nameOrId: string,
  options: Omit<BuildImageOptions, "force"> = {},
): Promise<CachedImage> {
  try {
    return await findImage(nameOrId);
  } catch (error) {
    if (!(error instanceof CorralError) || error.code !== ErrorCodes.IMAGE_NOT_BUILT) throw error;
    return (await buildImage(nameOrId, options)).image;
  }
}
