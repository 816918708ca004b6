// `corral image build|list|verify|scripts`: this host's guest image cache; through image-api.ts,
// `corral image ls|import|rm`: the images of corral serve; `corral image prepare-windows`
// (image-windows.ts): unattended-install media for Windows VMs.

import { type Command, Option } from "commander";
import { buildImage, ensureImage } from "../images/build-image.ts";
import { findImage, listImages } from "../images/image-cache.ts";
import { writeMachineScripts } from "../images/machine-scripts.ts";
import { verifyArtifacts } from "../images/manifest.ts";
import { DEFAULT_RECIPE, knownRecipes } from "../images/recipe.ts";
import { registerImageApi } from "./image-api.ts";
import { registerPrepareWindows } from "./image-windows.ts";
import { interruptSignal } from "./interrupt.ts";
import { collectWords, parseVlan } from "./parse.ts";
import { progressRenderer } from "./progress-renderer.ts";
import { formatTable } from "./table.ts";

export function registerImage(program: Command): void {
  const image = program
    .command("image")
    .description(
      "build guest images in this host's cache (build, list, verify, scripts), and manage the " +
        "images of corral serve (ls, import, rm)",
    );

  image
    .command("build")
    .description(
      `build a guest image from a recipe (known: ${knownRecipes().join(", ")}); a verified cached build is reused`,
    )
    .argument("[recipe]", "recipe name", DEFAULT_RECIPE)
    .option("--force", "rebuild even when a verified build is cached")
    .action(async (recipe: string, options: { force?: boolean }) => {
      const renderer = progressRenderer();
      const started = performance.now();
      try {
        const result = await buildImage(recipe, {
          force: options.force ?? false,
          signal: interruptSignal(),
          onProgress: renderer.listener,
        });
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        if (result.rebuiltBecause)
          process.stderr.write(`corral: rebuilt because: ${result.rebuiltBecause}\n`);
        const how = result.wasCached ? `cached, verified in ${seconds} s` : `built in ${seconds} s`;
        process.stdout.write(`${result.image.manifest.id} ${result.image.dir} (${how})\n`);
      } finally {
        renderer.close();
      }
    });

  image
    .command("scripts")
    .description(
      "write NixOS-style start scripts for the machines of a test: <out>/run-<name>-vm for each " +
        "name, node numbers in the order of the sorted names, one NIC per VLAN (the switch socket " +
        "comes from $QEMU_VDE_SOCKET_<vlan>, which corral test sets); use them with " +
        "corral test --start-scripts",
    )
    .argument("<names...>", "machine names")
    .requiredOption("--out <dir>", "folder for the scripts")
    .addOption(
      new Option("--vlans <numbers...>", "VLANs every machine joins (default: 1)").argParser(
        collectWords(parseVlan),
      ),
    )
    .option("--image <image>", "recipe name or image id; built first if needed", DEFAULT_RECIPE)
    .action(async (names: string[], options: { out: string; vlans?: number[]; image: string }) => {
      const renderer = progressRenderer();
      try {
        const built = await ensureImage(options.image, {
          signal: interruptSignal(),
          onProgress: renderer.listener,
        });
        const vlans = options.vlans ?? [1];
        for (const path of await writeMachineScripts(built, names, vlans, options.out)) {
          process.stdout.write(`${path}\n`);
        }
      } finally {
        renderer.close();
      }
    });

  image
    .command("list")
    .description(
      "list the built images in this host's cache (no daemon needed; `corral image ls` lists the daemon's images)",
    )
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const images = await listImages();
      if (options.json) {
        process.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
        return;
      }
      const rows = images.map(({ manifest, isCurrent }) => {
        const bytes = Object.values(manifest.artifacts).reduce((sum, a) => sum + a.sizeBytes, 0);
        return [
          manifest.id,
          manifest.recipe,
          isCurrent ? "yes" : "no (recipe changed)",
          manifest.kernelRelease,
          `${Math.round(bytes / 2 ** 20)} MiB`,
          manifest.builtAt,
        ];
      });
      process.stdout.write(
        `${formatTable(["ID", "RECIPE", "CURRENT", "KERNEL", "SIZE", "BUILT"], rows)}\n`,
      );
    });

  image
    .command("verify")
    .description("check every artifact of the built images (or one) against its manifest's sha256")
    .argument("[image]", "recipe name or image id (default: all)")
    .action(async (nameOrId: string | undefined) => {
      const images = nameOrId ? [await findImage(nameOrId)] : await listImages();
      let isBroken = false;
      for (const { dir, manifest } of images) {
        const problems = await verifyArtifacts(dir, manifest);
        if (problems.length === 0) {
          process.stdout.write(`${manifest.id}: ok\n`);
          continue;
        }
        isBroken = true;
        for (const { file, problem } of problems)
          process.stdout.write(`${manifest.id}: ${file}: ${problem}\n`);
        process.stdout.write(
          `${manifest.id}: CORRUPT; \`corral image build ${manifest.recipe}\` rebuilds it\n`,
        );
      }
      if (images.length === 0) process.stdout.write("no images built yet\n");
      process.exitCode = isBroken ? 1 : 0;
    });

  registerImageApi(image);
  registerPrepareWindows(image);
}
