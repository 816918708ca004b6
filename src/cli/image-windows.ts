// `corral image prepare-windows`: unattended-install media for a Windows VM (src/images/windows-media.ts).

import { type Command, InvalidArgumentError, Option } from "commander";
import {
  DEFAULT_DISK_GIB,
  MIN_DISK_GIB,
  prepareWindowsMedia,
  readAdminPasswordFile,
  type WindowsMedia,
} from "../images/windows-media.ts";
import { interruptSignal } from "./interrupt.ts";

interface PrepareWindowsFlags {
  iso: string;
  virtioWin: string;
  out: string;
  diskGib: number;
  adminUser: string;
  adminPassword?: string;
  adminPasswordFile?: string;
  locale?: string;
  timeZone?: string;
  computerName?: string;
  imageIndex?: number;
  imageName?: string;
  productKey?: string;
  force?: boolean;
  json?: boolean;
}

export function registerPrepareWindows(image: Command): void {
  image
    .command("prepare-windows")
    .description(
      "make unattended-install media for a Windows VM: a setup ISO (autounattend.xml: virtio " +
        "storage and network drivers from the virtio-win ISO during setup, a UEFI disk layout, a " +
        "local administrator, and at first logon the QEMU guest agent from the virtio-win ISO, " +
        "its service set to start automatically) and a blank qcow2 disk. Attach the Windows ISO, " +
        "the virtio-win ISO and the setup ISO to a windows-default VM (docs/windows.md). Not " +
        "verified with a real Windows install.",
    )
    .requiredOption("--iso <file>", "the Windows installation ISO (UEFI-bootable)")
    .requiredOption("--virtio-win <file>", "the virtio-win drivers ISO")
    .option("--out <dir>", "folder for the media, created if missing", "windows-media")
    .option(
      "--disk-gib <n>",
      `the blank disk's size in GiB (at least ${MIN_DISK_GIB})`,
      parseWholeNumber,
      DEFAULT_DISK_GIB,
    )
    .option("--admin-user <name>", "the local administrator setup creates", "corral")
    .addOption(
      new Option(
        "--admin-password <password>",
        "its password (other users can see it in the process list: prefer --admin-password-file); " +
          "without either, one is generated into <out>/admin-password.txt",
      ).conflicts("adminPasswordFile"),
    )
    .option("--admin-password-file <file>", "read the password from the first line of this file")
    .option("--locale <locale>", "setup and system language, one the media has (default en-US)")
    .option(
      "--time-zone <id>",
      'Windows time zone id (default UTC), e.g. "W. Europe Standard Time"',
    )
    .option(
      "--computer-name <name>",
      "NetBIOS name, at most 15 characters (default: setup picks one)",
    )
    .addOption(
      new Option(
        "--image-index <n>",
        "the edition to install: its index in install.wim (default 1)",
      )
        .argParser(parseWholeNumber)
        .conflicts("imageName"),
    )
    .option("--image-name <name>", 'the edition to install by name, e.g. "Windows 11 Pro"')
    .option(
      "--product-key <key>",
      "a product key (media that asks for one stops at that page without it)",
    )
    .option(
      "--force",
      "replace media already in --out (a disk there may hold an installed Windows)",
    )
    .option("--json", "print the result as JSON")
    .action(async (flags: PrepareWindowsFlags) => {
      const adminPassword = flags.adminPasswordFile
        ? await readAdminPasswordFile(flags.adminPasswordFile)
        : flags.adminPassword;
      const image =
        flags.imageName !== undefined
          ? { name: flags.imageName }
          : flags.imageIndex !== undefined
            ? { index: flags.imageIndex }
            : undefined;
      const media = await prepareWindowsMedia({
        windowsIso: flags.iso,
        virtioWinIso: flags.virtioWin,
        outDir: flags.out,
        diskGiB: flags.diskGib,
        adminUser: flags.adminUser,
        force: flags.force ?? false,
        signal: interruptSignal(),
        ...(adminPassword !== undefined && { adminPassword }),
        ...(flags.locale !== undefined && { locale: flags.locale }),
        ...(flags.timeZone !== undefined && { timeZone: flags.timeZone }),
        ...(flags.computerName !== undefined && { computerName: flags.computerName }),
        ...(image && { image }),
        ...(flags.productKey !== undefined && { productKey: flags.productKey }),
      });
      process.stdout.write(flags.json ? `${JSON.stringify(media, null, 2)}\n` : describe(media));
    });
}

function describe(media: WindowsMedia): string {
  const drives = [media.windowsIso, media.virtioWinIso, media.setupIso].map((path) => ({
    path,
    media: "cdrom",
    readOnly: true,
  }));
  return [
    `setup ISO   ${media.setupIso}`,
    `disk        ${media.disk} (${media.diskGiB} GiB, blank qcow2)`,
    `admin       ${media.adminUser}${media.passwordFile ? ` (password in ${media.passwordFile})` : ""}`,
    `drivers     ${media.driverFolders.join(", ")}`,
    "",
    "Next: create a windows-default VM with these drives, the Windows ISO first (docs/windows.md):",
    `  "drives": ${JSON.stringify(drives)}`,
    "",
  ].join("\n");
}

function parseWholeNumber(value: string): number {
  if (!/^\d+$/.test(value))
    throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return Number(value);
}
