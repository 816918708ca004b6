// Machine's file copies between host and guest, of files and of folders (as trees): through the
// guest's transfer disk when the VM has one, else its `corral.xfer` port, or through the 9p shared
// folder when the machine has one (`sharedDir`, mounted by the guest at /tmp/shared as NixOS test
// VMs do).

import { randomUUID } from "node:crypto";
import { copyFile, cp, mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { Deadline, type WaitOptions } from "../deadline.ts";
import { CorralError, ErrorCodes, GuestCommandError } from "../errors.ts";
import type { BackdoorShell } from "../guest/backdoor-shell.ts";
import { shellQuote } from "../guest/shell-quote.ts";
import { hostSourceInfo } from "../guest/transfer-files.ts";
import type { CopyChannel, CopyOutcome, TransferCall } from "../guest/transfer-port.ts";
import { parseSha256 } from "../guest/transfer-scripts.ts";
import { EXECUTE_TIMEOUT_MS, type VmSession } from "./vm-session.ts";

/** Where the guest mounts the 9p shared folder. */
export const GUEST_SHARED_DIR = "/tmp/shared";

/** Exit status of the shared folder's copy out when the source is neither a file nor a folder. */
const EXIT_NOT_COPYABLE = 3;

/** Options of Machine.copyFromHost and copyFromVm. */
export interface CopyOptions extends WaitOptions {
  /**
   * Also hash a file's bytes in the guest (default false): the file as written into the guest
   * through the transfer disk (a second pass, bound by the guest's sha256sum), the bytes as they
   * pass through the `corral.xfer` port, the source beside the copy out of the guest, or with
   * sha256sum of the copy when the shared folder carries them. The result's `sha256` then says
   * what the guest received or sent.
   */
  sha256?: boolean;
}

/** What a copy moved: `kind`, and for a file copied with `sha256`, its sha256 in the guest. */
export type CopyResult = CopyOutcome;

/**
 * Copies the host file or folder `source` to `target` in the guest (parent folders are created;
 * a folder is merged into an existing one).
 */
export async function copyFromHost(
  session: VmSession,
  source: string,
  target: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const what = `${session.name}: copyFromHost(${source}, ${target})`;
  const deadline = new Deadline(what, options, EXECUTE_TIMEOUT_MS);
  const info = await hostSourceInfo(resolve(source)).catch((error: unknown) => {
    throw prefixed(what, error);
  });
  const shared = await sharedFolder(session, deadline);
  if (shared) {
    const name = `.corral-copy-${randomUUID()}`;
    const inGuest = shellQuote(`${GUEST_SHARED_DIR}/${name}`);
    const quotedTarget = shellQuote(target);
    try {
      if (info.isDirectory()) {
        await cp(resolve(source), join(shared, name), { recursive: true, verbatimSymlinks: true });
        await run(
          session,
          deadline,
          `mkdir -p -- ${quotedTarget} && cp -R -- ${inGuest}/. ${quotedTarget}/`,
        );
      } else {
        await copyFile(resolve(source), join(shared, name));
        const stdout = await run(
          session,
          deadline,
          `mkdir -p -- "$(dirname -- ${quotedTarget})" && cp -- ${inGuest} ${quotedTarget}` +
            (options.sha256 ? ` && sha256sum < ${quotedTarget}` : ""),
        );
        return sharedOutcome("file", options, stdout);
      }
    } finally {
      await rm(join(shared, name), { recursive: true, force: true });
    }
    return { kind: "directory" };
  }
  return throughGuest(
    session,
    { deadline, signal: options.signal },
    `copying ${source} in`,
    (channel, shell, call) =>
      channel.toGuest(shell, resolve(source), target, call, options.sha256 === true),
  );
}

/**
 * Copies the guest file or folder `source` to `target` on the host (parent folders are created;
 * a folder is merged into an existing one).
 */
export async function copyFromVm(
  session: VmSession,
  source: string,
  target: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const what = `${session.name}: copyFromVm(${source}, ${target})`;
  const deadline = new Deadline(what, options, EXECUTE_TIMEOUT_MS);
  await mkdir(dirname(resolve(target)), { recursive: true });
  const shared = await sharedFolder(session, deadline);
  if (shared) {
    const name = `.corral-copy-${randomUUID()}`;
    const quoted = shellQuote(source);
    const copy = shellQuote(`${GUEST_SHARED_DIR}/${name}`);
    try {
      const stdout = await run(
        session,
        deadline,
        `if [ -f ${quoted} ] || [ -d ${quoted} ]; then cp -R -- ${quoted} ${copy}; ` +
          `elif [ -e ${quoted} ]; then echo "$(stat -L -c %F -- ${quoted})" >&2; exit ${EXIT_NOT_COPYABLE}; ` +
          `else echo "No such file or directory" >&2; exit ${EXIT_NOT_COPYABLE + 1}; fi` +
          (options.sha256 ? `; if [ -f ${copy} ]; then sha256sum < ${copy}; fi` : ""),
      );
      const isDirectory = (await stat(join(shared, name))).isDirectory();
      await placeOnHost(join(shared, name), resolve(target));
      return isDirectory ? { kind: "directory" } : sharedOutcome("file", options, stdout);
    } finally {
      await rm(join(shared, name), { recursive: true, force: true });
    }
  }
  return throughGuest(
    session,
    { deadline, signal: options.signal },
    `copying ${source} out`,
    (channel, shell, call) =>
      channel.toHost(shell, source, resolve(target), call, options.sha256 === true),
  );
}

/** A file's outcome through the shared folder: its sha256 from the command's output if asked. */
function sharedOutcome(kind: "file", options: CopyOptions, stdout: string): CopyResult {
  const sha256 = options.sha256 ? parseSha256(stdout) : undefined;
  return sha256 === undefined ? { kind } : { kind, sha256 };
}

/**
 * Runs a copy through the transfer disk when the VM has one, else (or when the guest lacks it,
 * or the bytes do not fit on it) over the `corral.xfer` port.
 */
async function throughGuest(
  session: VmSession,
  call: Omit<TransferCall, "describe">,
  during: string,
  copy: (
    channel: CopyChannel,
    shell: BackdoorShell,
    call: TransferCall,
  ) => Promise<CopyOutcome | undefined>,
): Promise<CopyOutcome> {
  const shell = await session.connect(call.deadline);
  const full = { ...call, describe: () => session.describe() };
  const disk = session.transferDisk();
  const done = disk && (await session.explained(copy(disk, shell, full), during));
  if (done) return done;
  const port = await session.transferPort(call.deadline);
  return session.explained(copy(port, shell, full) as Promise<CopyOutcome>, during);
}

/** Moves a file or folder from the shared folder to `target`, merging into an existing folder. */
async function placeOnHost(from: string, target: string): Promise<void> {
  const existing = await stat(target).catch(() => undefined);
  if ((await stat(from)).isDirectory() && existing?.isDirectory()) {
    await cp(from, target, { recursive: true, force: true, verbatimSymlinks: true });
    return;
  }
  await rename(from, target).catch(async () => {
    await cp(from, target, { recursive: true, force: true, verbatimSymlinks: true });
  });
}

/** The host side of the shared folder, when the machine has one and the guest has mounted it. */
async function sharedFolder(session: VmSession, deadline: Deadline): Promise<string | undefined> {
  const host = session.options.sharedDir;
  if (!host) return undefined;
  const mounted = await session.run(`mountpoint -q ${GUEST_SHARED_DIR}`, deadline);
  return mounted.exitCode === 0 ? resolve(host) : undefined;
}

/** Runs `command`, which must succeed; returns its stdout. */
async function run(session: VmSession, deadline: Deadline, command: string): Promise<string> {
  const result = await session.run(command, deadline, { guestDeadline: "kill" });
  if (result.exitCode === 0) return result.stdout.toString();
  const stderr = result.stderr.toString().trim();
  if (result.exitCode === EXIT_NOT_COPYABLE) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${deadline.what}: the source in the guest is a ${stderr}; only regular files and folders can be copied`,
      { machine: session.name },
    );
  }
  if (result.exitCode === EXIT_NOT_COPYABLE + 1) {
    throw new CorralError(
      ErrorCodes.NOT_FOUND,
      `${deadline.what}: the source does not exist in the guest`,
      {
        machine: session.name,
      },
    );
  }
  throw new GuestCommandError(
    `${session.name}: copy through the shared folder failed: ${command}`,
    {
      command,
      exitCode: result.exitCode,
      stdout: result.stdout.toString(),
      stderr: result.stderr.toString(),
    },
    { machine: session.name },
  );
}

/** `error` as one of corral's, with the verb's description in front. */
function prefixed(what: string, error: unknown): CorralError {
  if (error instanceof CorralError) {
    return new CorralError(error.code, `${what}: ${error.message}`, { cause: error });
  }
  return new CorralError(ErrorCodes.HOST_COMMAND_FAILED, `${what}: ${String(error)}`, {
    cause: error,
  });
}
