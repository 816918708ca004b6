// `corral snapshot list|rm`: the boot snapshot cache of `corral test --reuse-boot`.

import type { Command } from "commander";
import { listBootSnapshots, removeBootSnapshots } from "../driver/boot-snapshots.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { SnapshotSource } from "../machine/snapshot-manifest.ts";
import { formatTable } from "./table.ts";

export function registerSnapshot(program: Command): void {
  const snapshot = program
    .command("snapshot")
    .description("manage the boot snapshots that corral test --reuse-boot restores");

  snapshot
    .command("list")
    .description("list the cached boot snapshots")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const entries = await listBootSnapshots();
      if (options.json) {
        process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
        return;
      }
      const rows = entries.map(({ name, sizeBytes, manifest }) => [
        name,
        manifest ? snapshotSourceName(manifest.source) : "(unreadable)",
        `${Math.round(sizeBytes / 2 ** 20)} MiB`,
        manifest?.createdAt ?? "",
      ]);
      process.stdout.write(`${formatTable(["SNAPSHOT", "FROM", "SIZE", "CREATED"], rows)}\n`);
    });

  snapshot
    .command("rm")
    .description(
      "remove cached boot snapshots: those of one machine name, or all (with the partial ones that killed runs left)",
    )
    .argument("[name]", "a machine name or a snapshot's full name")
    .option("--all", "remove every cached boot snapshot")
    .action(async (name: string | undefined, options: { all?: boolean }) => {
      if (name === undefined ? !options.all : options.all) {
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          "snapshot rm: give either a machine name or --all (every boot snapshot)",
        );
      }
      for (const removed of await removeBootSnapshots(name)) {
        process.stdout.write(`removed ${removed}\n`);
      }
    });
}

function snapshotSourceName(source: SnapshotSource): string {
  if (source.kind === "image") return source.imageId;
  return source.kind === "disk" ? "(disk)" : source.path;
}
