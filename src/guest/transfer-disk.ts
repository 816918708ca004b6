// File and folder copies through the guest's transfer disk (RunningVm.transferDisk): the host
// writes a copy's bytes into the disk's file and the guest reads them with direct I/O, or the
// reverse, while the shell carries the script (transfer-disk-scripts.ts) and its status. One
// copy at a time per disk, and the disk is emptied after each, whatever happened.

import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { BackdoorShell, ShellReply } from "./backdoor-shell.ts";
import { ChannelLock } from "./channel-lock.ts";
import {
  diskToGuestScript,
  diskToHostScript,
  EXIT_NO_DISK,
  EXIT_TOO_BIG,
  parseDiskHeader,
  parseTarBytes,
  TRANSFER_DISK_BYTES,
} from "./transfer-disk-scripts.ts";
import { HostSink, hostSource } from "./transfer-files.ts";
import {
  type CopyChannel,
  type CopyOutcome,
  outcome,
  requireSuccess,
  serially,
  type TransferCall,
} from "./transfer-port.ts";

/** The host's reads and writes of the disk's file, in requests this large. */
const CHUNK_BYTES = 4 * 1024 * 1024;

/** Makes the disk's file all zeros and sparse, at the size the guest sees. */
export async function emptyTransferDisk(path: string): Promise<void> {
  const file = await open(path, "a");
  try {
    await file.truncate(0);
    await file.truncate(TRANSFER_DISK_BYTES);
  } finally {
    await file.close();
  }
}

/** The transfer disk: carries a copy that fits on it, when the guest has found the disk. */
export class TransferDisk implements CopyChannel {
  readonly #path: string;
  readonly #lock = new ChannelLock();

  /** `path`: the host file behind the guest's disk. */
  constructor(path: string) {
    this.#path = path;
  }

  /**
   * CopyChannel.toGuest; undefined when the guest has no transfer disk or the bytes do not fit
   * on it. With `sha256`, the file is hashed as written (a second pass: the sum proves what landed).
   */
  toGuest(
    shell: BackdoorShell,
    source: string,
    target: string,
    call: TransferCall,
    sha256 = false,
  ): Promise<CopyOutcome | undefined> {
    return serially(this.#lock, call, async () => {
      await using prepared = await hostSource(source, call.deadline.signal);
      const { size } = await stat(prepared.path);
      if (size > TRANSFER_DISK_BYTES) return undefined;
      try {
        await this.#fill(prepared.path, size, call.deadline.signal);
        const script = diskToGuestScript({
          nonce: randomBytes(16).toString("hex"),
          isDirectory: prepared.kind === "directory",
          size,
          mode: prepared.mode,
          target,
          sha256,
        });
        const reply = await this.#exec(shell, script, call);
        if (reply.exitCode === EXIT_NO_DISK) return undefined;
        requireSuccess(reply, call, `copying ${source} to ${target} in the guest failed`, script);
        return outcome(prepared.kind, sha256, reply, call);
      } finally {
        await emptyTransferDisk(this.#path);
      }
    });
  }

  /**
   * CopyChannel.toHost; undefined when the guest has no transfer disk or the file does not fit
   * on it. With `sha256`, the guest hashes the source beside the copy.
   */
  toHost(
    shell: BackdoorShell,
    source: string,
    target: string,
    call: TransferCall,
    sha256 = false,
  ): Promise<CopyOutcome | undefined> {
    return serially(this.#lock, call, async () => {
      try {
        const script = diskToHostScript(source, sha256);
        const reply = await this.#exec(shell, script, call);
        if (reply.exitCode === EXIT_NO_DISK || reply.exitCode === EXIT_TOO_BIG) return undefined;
        requireSuccess(reply, call, `copying ${source} out of the guest failed`, script);
        const stdout = reply.stdout.toString();
        const header = parseDiskHeader(stdout);
        if (header?.kind === "-") {
          throw new CorralError(
            ErrorCodes.NOT_FOUND,
            `${call.deadline.what}: ${source} does not exist in the guest`,
          );
        }
        if (header?.kind === "x") {
          throw new CorralError(
            ErrorCodes.INVALID_ARGUMENT,
            `${call.deadline.what}: ${source} in the guest is a ${header.detail}; only regular files and folders can be copied`,
          );
        }
        const bytes = header?.kind === "d" ? parseTarBytes(reply.stderr.toString()) : header?.bytes;
        const sink = header && HostSink.open(`${header.kind}${header.detail}`, target);
        if (!sink || bytes === undefined) {
          throw new CorralError(
            ErrorCodes.GUEST_CHANNEL_BROKEN,
            `${call.deadline.what}: the guest said neither what it sent nor how much (${JSON.stringify(stdout.slice(0, 200))})`,
          );
        }
        try {
          if (bytes > 0) {
            const reading = createReadStream(this.#path, {
              start: 0,
              end: bytes - 1,
              highWaterMark: CHUNK_BYTES,
              signal: call.deadline.signal,
            });
            for await (const chunk of reading) await sink.writeWhenReady(chunk as Buffer);
          }
          return outcome(await sink.commit(), sha256, reply, call);
        } finally {
          await sink.discard();
        }
      } finally {
        await emptyTransferDisk(this.#path);
      }
    });
  }

  /** Writes the `size` bytes of the host file `path` to the disk from its start. */
  async #fill(path: string, size: number, signal: AbortSignal): Promise<void> {
    let written = 0;
    await pipeline(
      createReadStream(path, { highWaterMark: CHUNK_BYTES }),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          written += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(this.#path, { flags: "r+" }),
      { signal },
    );
    if (written !== size) {
      throw new CorralError(
        ErrorCodes.HOST_COMMAND_FAILED,
        `${path} changed size while it was read (${written} bytes, not ${size}); nothing was written in the guest`,
      );
    }
  }

  #exec(shell: BackdoorShell, script: string, call: TransferCall): Promise<ShellReply> {
    return shell.exec(script, call.deadline, call.describe, {
      guestDeadline: "kill",
      ...(call.signal ? { signal: call.signal } : {}),
    });
  }
}
