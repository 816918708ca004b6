// Folders in and out of a guest as tar archives, over any channel: the guest's own `tar` (GNU tar
// on Linux, tar.exe — bsdtar — on Windows 10 1803 and later) packs into or unpacks from a
// temporary file, which travels through the channel's file verbs like any file, so its sha256
// is checked end to end and a mismatch unpacks nothing.

import { randomBytes } from "node:crypto";
import type { Deadline } from "../../deadline.ts";
import { GuestCommandError } from "../../errors.ts";
import { shellQuote } from "../../guest/shell-quote.ts";
import { psQuote } from "../../guest/windows/powershell.ts";
import type { GuestOps } from "./guest-ops.ts";

/** The media type of a folder's archive. */
export const TAR_MEDIA_TYPE = "application/x-tar";

/**
 * Packs the folder `path` into a tar archive in the guest and streams it; the archive's entries
 * are relative to the folder (`./etc/…`). The temporary archive is removed once read, or when
 * the reader stops early. Throws CORRAL_GUEST_COMMAND_FAILED with tar's message when it fails.
 */
export async function* readFolderArchive(
  guest: GuestOps,
  path: string,
  deadline: Deadline,
): AsyncGenerator<Buffer> {
  const archive = temporaryArchive(guest);
  try {
    await run(guest, packCommand(guest, path, archive), `pack ${path}`, deadline);
    yield* guest.readFile(archive, deadline);
  } finally {
    await guest.remove(archive, {}, deadline).catch(() => {});
  }
}

/**
 * Writes the tar archive `data` into the guest (checked against `sha256` when given: a mismatch
 * unpacks nothing) and unpacks it into the folder `path`, made when missing; files already there
 * that the archive does not hold stay. Resolves with the archive's size and sha256.
 */
export async function writeFolderArchive(
  guest: GuestOps,
  path: string,
  data: AsyncIterable<Uint8Array>,
  options: { sha256?: string },
  deadline: Deadline,
): Promise<{ sizeBytes: number; sha256: string }> {
  const archive = temporaryArchive(guest);
  try {
    const written = await guest.writeFile(archive, data, options, deadline);
    await run(guest, unpackCommand(guest, path, archive), `unpack into ${path}`, deadline);
    return written;
  } finally {
    await guest.remove(archive, {}, deadline).catch(() => {});
  }
}

function temporaryArchive(guest: GuestOps): string {
  const name = `corral-archive-${randomBytes(8).toString("hex")}.tar`;
  return guest.capabilities.os === "windows" ? `C:\\Windows\\Temp\\${name}` : `/var/tmp/.${name}`;
}

function packCommand(guest: GuestOps, folder: string, archive: string): string {
  return guest.capabilities.os === "windows"
    ? `& tar.exe -C ${psQuote(folder)} -cf ${psQuote(archive)} .; exit $LASTEXITCODE`
    : `tar -C ${shellQuote(folder)} -cf ${shellQuote(archive)} .`;
}

function unpackCommand(guest: GuestOps, folder: string, archive: string): string {
  return guest.capabilities.os === "windows"
    ? `New-Item -ItemType Directory -Force -Path ${psQuote(folder)} | Out-Null; & tar.exe -C ${psQuote(folder)} -xf ${psQuote(archive)}; exit $LASTEXITCODE`
    : `mkdir -p -- ${shellQuote(folder)} && tar -C ${shellQuote(folder)} -xf ${shellQuote(archive)}`;
}

async function run(
  guest: GuestOps,
  command: string,
  what: string,
  deadline: Deadline,
): Promise<void> {
  const outcome = await guest.exec({ command }, deadline);
  if (outcome.exitCode !== 0) {
    throw new GuestCommandError(
      `${what}: tar exited with status ${outcome.exitCode}: ${outcome.stderr.toString("utf8").trim() || "(no message)"}`,
      {
        command,
        exitCode: outcome.exitCode,
        stdout: outcome.stdout.toString("utf8"),
        stderr: outcome.stderr.toString("utf8"),
      },
    );
  }
}
