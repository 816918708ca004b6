// `corral image ls|import|rm`: the images of corral serve, through its API (`corral image build`,
// `list`, `verify` and `scripts` work on this host's image cache without a daemon).

import { basename, extname, resolve } from "node:path";
import type { Command } from "commander";
import { removeImages } from "../images/image-cache.ts";
import {
  type ApiFlags,
  callApi,
  formatSize,
  printJson,
  printTable,
  segment,
  withApiOptions,
} from "./api-command.ts";

/** An image as the daemon shows it (GET /v1/images). */
interface ImageView {
  id: string;
  name: string;
  kind: string;
  recipe: string | null;
  format: string;
  path: string;
  sha256: string;
  sizeBytes: number;
  createdAt: string;
}

interface ImportFlags extends ApiFlags {
  name?: string;
  sha256?: string;
  format?: string;
}

/** Adds the daemon's image commands to the `image` command. */
export function registerImageApi(image: Command): void {
  withApiOptions(
    image
      .command("ls")
      .description("list the images of corral serve (built from recipes or imported)")
      .addHelpText("after", "\nExample:\n  corral image ls --json"),
    { hasJson: true },
  ).action((flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const images = await api.request<ImageView[]>("GET", "/v1/images");
      if (flags.json) return printJson(images);
      const rows = images.map((i) => [
        i.name,
        i.id,
        i.kind === "built" ? `built (${i.recipe})` : i.kind,
        i.format,
        formatSize(i.sizeBytes),
        i.createdAt,
      ]);
      printTable(["NAME", "ID", "KIND", "FORMAT", "SIZE", "CREATED"], rows, "no images");
    }),
  );

  withApiOptions(
    image
      .command("import")
      .description(
        "import a qcow2, raw or ISO file into corral serve (copied; the file must be on the daemon's host)",
      )
      .argument("<file>", "the file to import")
      .option("--name <name>", "the image's name (default: the file's name without its extension)")
      .option("--sha256 <hex>", "the file's expected sha256; a file with another is refused")
      .option("--format <format>", "qcow2, raw or iso (default: what qemu-img info sees)")
      .addHelpText(
        "after",
        "\nExample:\n  corral image import ./debian-12-genericcloud-amd64.qcow2 --name debian-cloud",
      ),
    { hasJson: true },
  ).action((file: string, flags: ImportFlags) =>
    callApi(flags, async (api) => {
      const path = resolve(file);
      const name = flags.name ?? basename(path, extname(path));
      const body = {
        import: {
          path,
          name,
          ...(flags.sha256 !== undefined && { sha256: flags.sha256 }),
          ...(flags.format !== undefined && { format: flags.format }),
        },
      };
      const imported = await api.request<ImageView>("POST", "/v1/images", { body });
      if (flags.json) return printJson(imported);
      process.stdout.write(
        `imported ${imported.name} ${imported.id} (${imported.format}, ${formatSize(imported.sizeBytes)})\n`,
      );
    }),
  );

  withApiOptions(
    image
      .command("rm")
      .description(
        "remove an image of corral serve (refused while a VM or snapshot uses it); with --cache, " +
          "remove builds from this host's image cache instead (every build of a recipe, or one id)",
      )
      .argument("<image>", "the image's name or id (with --cache: a recipe name or a build id)")
      .option("--cache", "remove from the local image cache, without a daemon")
      .addHelpText(
        "after",
        "\nExamples:\n  corral image rm debian-cloud\n  corral image rm --cache debian-12",
      ),
  ).action(async (nameOrId: string, flags: ApiFlags & { cache?: boolean }) => {
    if (flags.cache) {
      for (const id of await removeImages(nameOrId)) process.stdout.write(`removed ${id}\n`);
      return;
    }
    await callApi(flags, async (api) => {
      const removed = await api.request<ImageView>("DELETE", `/v1/images/${segment(nameOrId)}`);
      process.stdout.write(`removed ${removed.name} ${removed.id}\n`);
    });
  });
}
