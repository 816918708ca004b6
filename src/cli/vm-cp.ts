// `corral vm cp`: a file or folder into a VM's guest (`corral vm cp ./f web:/srv/f`) or out of it
// (`corral vm cp web:/var/log/syslog .`), streamed through the daemon and checked by sha256 end
// to end; a local copy is written aside and renamed into place once its sha256 matches. Folders
// travel as tar archives, packed and unpacked by the host's and the guest's `tar`.

import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { CorralError, ErrorCodes } from "../errors.ts";
import { runProgram } from "../host/run-program.ts";
import type { ApiClient } from "./api-client.ts";
import {
  type ApiFlags,
  callApi,
  printJson,
  query,
  segment,
  withApiOptions,
} from "./api-command.ts";
import { interruptSignal } from "./interrupt.ts";

/** `<vm>:<absolute path>`; the VM a name or an id. */
const REMOTE = /^([a-z0-9][a-z0-9-]{0,62}|[0-9A-HJKMNP-TV-Z]{26}):(\/.*|[A-Za-z]:[\\/].*)$/;

interface Remote {
  vm: string;
  path: string;
}

interface CopyResult {
  from: string;
  to: string;
  sizeBytes: number;
  sha256: string;
}

export function registerVmCp(vm: Command): void {
  withApiOptions(
    vm
      .command("cp")
      .description("copy a file or folder into a VM's guest or out of it, checked by sha256")
      .argument("<source>", "a local file or folder, or <vm>:<absolute path in the guest>")
      .argument("<target>", "<vm>:<absolute path in the guest>, or a local path ('-': stdout)")
      .addHelpText(
        "after",
        "\nExactly one side is <vm>:<path>. A target that is a folder (or ends with /) gets the " +
          "source's name. Into a guest, the file keeps its mode; the guest writes it aside and " +
          "renames it into place only when its sha256 is the local file's. Out of a guest, the " +
          "local file is written aside and renamed once its sha256 matches the guest's. A folder " +
          "travels as a tar archive (checked the same way) and is unpacked into the target folder, " +
          "made when missing; out of a guest to '-', the archive itself is written.\n\nExamples:\n" +
          "  corral vm cp ./app.tar.gz web:/srv/\n" +
          "  corral vm cp ./site web:/srv/www\n" +
          "  corral vm cp web:/var/log/syslog ./syslog\n" +
          "  corral vm cp web:/etc/os-release - | grep VERSION",
      ),
    { hasJson: true },
  ).action((source: string, target: string, flags: ApiFlags) =>
    callApi(flags, async (api) => {
      const from = REMOTE.exec(source);
      const to = REMOTE.exec(target);
      if ((from === null) === (to === null)) {
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          `exactly one of ${source} and ${target} must be <vm>:<absolute path> (web:/srv/app.conf)`,
        );
      }
      const signal = interruptSignal();
      const result = to
        ? await upload(api, source, { vm: to[1] as string, path: to[2] as string }, signal)
        : await download(
            api,
            { vm: from?.[1] as string, path: from?.[2] as string },
            target,
            signal,
          );
      if (flags.json) return printJson(result);
      if (target !== "-") {
        process.stdout.write(`${result.to}: ${result.sizeBytes} bytes, sha256 ${result.sha256}\n`);
      }
    }),
  );
}

async function upload(
  api: ApiClient,
  local: string,
  remote: Remote,
  signal: AbortSignal,
): Promise<CopyResult> {
  const info = await stat(local).catch((error: NodeJS.ErrnoException) => {
    throw new CorralError(
      ErrorCodes.NOT_FOUND,
      `cannot read ${local}: ${error.code ?? error.message}`,
    );
  });
  if (info.isDirectory()) return uploadFolder(api, local, remote, signal);
  if (!info.isFile()) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${local} is neither a file nor a folder: cp copies those`,
    );
  }
  const path = await remotePath(api, remote, basename(local));
  const sha256 = await fileSha256(local);
  const written = await api.upload<{ path: string; sizeBytes: number; sha256: string }>(
    "PUT",
    `${filesPath(remote.vm, path)}&mode=${(info.mode & 0o7777).toString(8).padStart(4, "0")}`,
    createReadStream(local),
    { headers: { "x-corral-sha256": sha256 }, signal },
  );
  return { from: local, to: `${remote.vm}:${written.path}`, ...written };
}

/** A folder as a tar archive, packed aside first: its sha256 goes before its bytes. */
async function uploadFolder(
  api: ApiClient,
  local: string,
  remote: Remote,
  signal: AbortSignal,
): Promise<CopyResult> {
  const path = await remotePath(api, remote, basename(local));
  const archive = join(tmpdir(), `corral-cp-${randomBytes(6).toString("hex")}.tar`);
  try {
    await runProgram("tar", ["-C", local, "-cf", archive, "."], { signal });
    const written = await api.upload<{ path: string; sizeBytes: number; sha256: string }>(
      "PUT",
      `${filesPath(remote.vm, path)}&archive=tar`,
      createReadStream(archive),
      { headers: { "x-corral-sha256": await fileSha256(archive) }, signal },
    );
    return { from: local, to: `${remote.vm}:${written.path}`, ...written };
  } finally {
    await rm(archive, { force: true });
  }
}

async function download(
  api: ApiClient,
  remote: Remote,
  local: string,
  signal: AbortSignal,
): Promise<CopyResult> {
  const target = await localPath(local, remote.path);
  const answer = await api.download(filesPath(remote.vm, remote.path), { signal });
  const isFolder = answer.headers["x-corral-type"] === "directory";
  const hash = createHash("sha256");
  let sizeBytes = 0;
  const counted = async function* () {
    for await (const chunk of answer.body) {
      hash.update(chunk);
      sizeBytes += chunk.length;
      yield chunk;
    }
  };
  const aside =
    target === "-"
      ? undefined
      : join(
          dirname(target),
          `.${basename(target)}.corral-${randomBytes(4).toString("hex")}${isFolder ? ".tar" : ""}`,
        );
  try {
    await pipeline(counted(), aside === undefined ? process.stdout : createWriteStream(aside), {
      end: aside !== undefined,
    });
    const sha256 = hash.digest("hex");
    const expected = answer.trailers["x-corral-sha256"];
    if (expected !== sha256) {
      throw new CorralError(
        ErrorCodes.CHECKSUM_MISMATCH,
        expected === undefined
          ? `${remote.vm}:${remote.path}: the daemon's answer ended without its sha256 (cut short after ${sizeBytes} bytes?)`
          : `${remote.vm}:${remote.path}: the ${sizeBytes} bytes that arrived have sha256 ${sha256}, the guest's file ${String(expected)}`,
      );
    }
    if (aside !== undefined && isFolder) {
      await mkdir(target, { recursive: true });
      await runProgram("tar", ["-C", target, "-xf", aside], { signal });
    } else if (aside !== undefined) {
      await rename(aside, target);
    }
    return { from: `${remote.vm}:${remote.path}`, to: target, sizeBytes, sha256 };
  } finally {
    if (aside !== undefined) await rm(aside, { force: true });
  }
}

/** The guest path to write: the source's name inside `remote.path` when that is a folder. */
async function remotePath(api: ApiClient, remote: Remote, name: string): Promise<string> {
  if (/[\\/]$/.test(remote.path)) return `${remote.path}${name}`;
  // A HEAD error has no body: any refusal is left for the PUT to report with its reason.
  const { status, headers } = await api.head(filesPath(remote.vm, remote.path));
  return status === 200 && headers["x-corral-type"] === "directory"
    ? `${remote.path}/${name}`
    : remote.path;
}

/** The local path to write: `local`, or the remote file's name inside it when it is a folder. */
async function localPath(local: string, remotePathName: string): Promise<string> {
  if (local === "-") return local;
  const name = remotePathName.split(/[\\/]/).pop() || "file";
  const info = await stat(local).catch(() => undefined);
  return info?.isDirectory() || local.endsWith("/") ? join(local, name) : local;
}

function filesPath(vm: string, path: string): string {
  return `/v1/vms/${segment(vm)}/guest/files${query({ path })}`;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
