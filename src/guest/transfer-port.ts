// File and folder copies through the guest's `corral.xfer` port: the bytes travel raw (a folder
// as a tar archive), beside the shell, while a script in the guest (transfer-scripts.ts) reads
// or writes the port. Each transfer is framed with markers of its own, so one that failed
// half-way (the shell died, a limit passed) cannot be mistaken for the next one's data.

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import type { Duplex } from "node:stream";
import { type Deadline, timeoutSignal } from "../deadline.ts";
import { CorralError, ErrorCodes, GuestCommandError } from "../errors.ts";
import type { BackdoorShell, ShellReply } from "./backdoor-shell.ts";
import { ChannelLock } from "./channel-lock.ts";
import { ChunkReader, type ReadLimit } from "./chunk-reader.ts";
import { MarkerSplitter } from "./shell-framing.ts";
import { HostSink, hostSource, type SourceKind } from "./transfer-files.ts";
import {
  EXIT_HOST_GAVE_UP,
  parseSha256,
  toGuestScript,
  toHostScript,
  transferMarkers,
} from "./transfer-scripts.ts";

/** One copy's deadline, the console lines for its errors, and the caller's own signal. */
export interface TransferCall {
  deadline: Deadline;
  describe: () => string[];
  signal?: AbortSignal | undefined;
}

/** What a copy moved: a file or a folder, and with `sha256` asked, the file's sum in the guest. */
export interface CopyOutcome {
  kind: SourceKind;
  /** The sha256 (hex) of the file's bytes as the guest received or sent them. */
  sha256?: string;
}

/** One copy through a CopyChannel, from `source` to `target`, its file hashed if `sha256`. */
export type CopyVerb = (
  shell: BackdoorShell,
  source: string,
  target: string,
  call: TransferCall,
  sha256?: boolean,
) => Promise<CopyOutcome | undefined>;

/** A way to copy files and folders between host and guest, beside the guest's shell. */
export interface CopyChannel {
  /**
   * Copies the host file or folder `source` to `target` in the guest (parent folders are
   * created; a folder is merged into an existing one). Anything else is refused at once. With
   * `sha256`, the guest hashes the file's bytes as it received them. Resolves to undefined,
   * having changed nothing, when this channel cannot carry the copy (the next one's turn).
   */
  toGuest: CopyVerb;
  /**
   * Copies the guest file or folder `source` to the host path `target` (parent folders are
   * created; a folder is merged into an existing one). Anything else is refused. With `sha256`,
   * the guest hashes the file's bytes it sent. Resolves to undefined, having changed nothing,
   * when this channel cannot carry the copy.
   */
  toHost: CopyVerb;
}

const ZEROS = Buffer.alloc(64 * 1024);

/** The `corral.xfer` port: carries any copy (it never resolves to undefined). */
export class TransferPort implements CopyChannel {
  readonly #socket: Duplex;
  readonly #reader: ChunkReader;
  readonly #lock = new ChannelLock();

  constructor(socket: Duplex) {
    this.#socket = socket;
    this.#reader = new ChunkReader("transfer port", socket);
  }

  /** CopyChannel.toGuest; with `sha256`, a file's bytes are hashed as they arrive. */
  toGuest(
    shell: BackdoorShell,
    source: string,
    target: string,
    call: TransferCall,
    sha256 = false,
  ): Promise<CopyOutcome> {
    return this.#serially(call, async () => {
      await using prepared = await hostSource(source, call.deadline.signal);
      const nonce = randomBytes(16).toString("hex");
      const file = await open(prepared.path, "r");
      try {
        const { size } = await file.stat();
        const script = toGuestScript({
          nonce,
          isDirectory: prepared.kind === "directory",
          size,
          mode: prepared.mode,
          target,
          sha256,
        });
        const stop = new AbortController();
        const sending = this.#send(file, size, nonce, stop.signal);
        let reply: ShellReply;
        try {
          reply = await shell.exec(script, call.deadline, call.describe, {
            guestDeadline: "kill",
            ...(call.signal ? { signal: call.signal } : {}),
          });
        } finally {
          stop.abort();
        }
        const readError = await sending;
        if (readError) {
          throw new CorralError(
            ErrorCodes.HOST_COMMAND_FAILED,
            `${call.deadline.what}: reading ${source} failed: ${readError.message}; nothing was written in the guest`,
            { cause: readError },
          );
        }
        requireSuccess(reply, call, `copying ${source} to ${target} in the guest failed`, script);
        return outcome(prepared.kind, sha256, reply, call);
      } finally {
        await file.close();
      }
    });
  }

  /** CopyChannel.toHost; with `sha256`, a file's bytes are hashed as they are sent. */
  toHost(
    shell: BackdoorShell,
    source: string,
    target: string,
    call: TransferCall,
    sha256 = false,
  ): Promise<CopyOutcome> {
    return this.#serially(call, async () => {
      const nonce = randomBytes(16).toString("hex");
      const stop = new AbortController();
      const incoming = new Incoming(nonce, target);
      const receiving = this.#reader.read(
        { signal: stop.signal, error: () => stop.signal.reason },
        (chunk) => incoming.push(chunk),
      );
      receiving.catch(() => undefined);
      const script = toHostScript(nonce, source, sha256);
      try {
        const reply = await shell.exec(script, call.deadline, call.describe, {
          guestDeadline: "kill",
          ...(call.signal ? { signal: call.signal } : {}),
        });
        if (!reply.isKilled && reply.exitCode === 0) {
          // The guest wrote the end marker before its status: the rest is on its way, and it
          // gets the deadline's remaining time (at least 5 s; none without a deadline).
          timeoutSignal(Math.max(call.deadline.remainingMs, 5000)).addEventListener("abort", () =>
            stop.abort(call.deadline.error(call.describe())),
          );
        } else {
          stop.abort(new Error("the guest's side ended"));
        }
        await receiving.catch((error: unknown) => {
          if (!reply.isKilled && reply.exitCode === 0) throw error;
        });
        requireSuccess(reply, call, `copying ${source} out of the guest failed`, script);
        return outcome(await incoming.commit(source, call), sha256, reply, call);
      } finally {
        stop.abort(new Error("the copy ended"));
        await incoming.discard();
      }
    });
  }

  /**
   * Once the guest is ready, sends the sync sequence, then exactly `size` bytes of `file` and
   * `Y`; if reading fails or the file shrank, zeros up to `size` and `N`. Stops when `signal`
   * fires (the guest's side ended). Returns the read error, if any.
   */
  async #send(
    file: FileHandle,
    size: number,
    nonce: string,
    signal: AbortSignal,
  ): Promise<Error | undefined> {
    const { ready, sync } = transferMarkers(nonce);
    const limit: ReadLimit = { signal, error: () => signal.reason };
    try {
      const splitter = new MarkerSplitter(ready, () => {});
      await this.#reader.read(limit, (chunk) => {
        const rest = splitter.push(chunk);
        return rest ? { value: undefined, rest } : undefined;
      });
      await this.#write(Buffer.from(sync), signal);
      let sent = 0;
      let readError: Error | undefined;
      if (size > 0) {
        try {
          for await (const chunk of file.createReadStream({
            start: 0,
            end: size - 1,
            autoClose: false,
          })) {
            const part = (chunk as Buffer).subarray(0, size - sent);
            await this.#write(part, signal);
            sent += part.length;
          }
        } catch (error) {
          if (signal.aborted) return undefined;
          readError = error instanceof Error ? error : new Error(String(error));
        }
      }
      if (sent < size)
        readError ??= new Error(`the file shrank while it was read (${sent} of ${size} bytes)`);
      while (sent < size) {
        const part = ZEROS.subarray(0, Math.min(ZEROS.length, size - sent));
        await this.#write(part, signal);
        sent += part.length;
      }
      await this.#write(Buffer.from(readError ? "N" : "Y"), signal);
      return readError;
    } catch {
      // Stopped: the guest's side has ended, and its status says how.
      return undefined;
    }
  }

  /**
   * Writes `text` to the guest as it is, beside any transfer: the control lines of an
   * interactive command's relay (interactive-exec.ts), which reads the port while it runs.
   */
  sendControl(text: string): void {
    this.#socket.write(text);
  }

  async #write(chunk: Buffer, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw signal.reason;
    if (!this.#socket.write(chunk)) await once(this.#socket, "drain", { signal });
  }

  #serially<T>(call: TransferCall, fn: () => Promise<T>): Promise<T> {
    return serially(this.#lock, call, fn);
  }
}

/**
 * Runs `fn` once `lock` is free, within the call's deadline; errors that are not corral's become
 * CORRAL_HOST_COMMAND_FAILED.
 */
export function serially<T>(
  lock: ChannelLock,
  call: TransferCall,
  fn: () => Promise<T>,
): Promise<T> {
  const limit: ReadLimit = {
    signal: call.deadline.signal,
    error: () =>
      call.deadline.error([
        ...(lock.holder ? [`It was still waiting for an earlier copy to end: ${lock.holder}`] : []),
        ...call.describe(),
      ]),
  };
  return lock.run(call.deadline.what, limit, fn).catch((error: unknown) => {
    if (error instanceof CorralError) throw error;
    throw new CorralError(
      ErrorCodes.HOST_COMMAND_FAILED,
      `${call.deadline.what}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  });
}

/** A copy's outcome; throws when the guest was asked for a file's sha256 and printed none. */
export function outcome(
  kind: SourceKind,
  sha256: boolean,
  reply: ShellReply,
  call: TransferCall,
): CopyOutcome {
  if (!sha256 || kind !== "file") return { kind };
  const sum = parseSha256(reply.stdout.toString());
  if (sum === undefined) {
    throw new CorralError(
      ErrorCodes.GUEST_CHANNEL_BROKEN,
      `${call.deadline.what}: the guest printed no sha256 for the file (${JSON.stringify(reply.stdout.toString().slice(0, 200))})`,
    );
  }
  return { kind, sha256: sum };
}

/** Throws the error a copy's guest script ended with, if it did not succeed. */
export function requireSuccess(
  reply: ShellReply,
  call: TransferCall,
  message: string,
  script: string,
) {
  if (reply.isKilled) {
    throw call.deadline.error([
      "The copy was stopped in the guest at its limit.",
      ...call.describe(),
    ]);
  }
  if (reply.exitCode === 0) return;
  const { exitCode, stdout, stderr } = reply;
  throw new GuestCommandError(
    `${call.deadline.what}: ${message}${exitCode === EXIT_HOST_GAVE_UP ? " (the host gave up)" : ""}`,
    { command: script, exitCode, stdout: stdout.toString(), stderr: stderr.toString() },
  );
}

/**
 * The host side of a copy out of the guest: skips to the start marker, reads the header line,
 * then passes the data up to the end marker to a sink (a file, or a tar extraction) that keeps
 * it beside the target until `commit`.
 */
class Incoming {
  readonly #start: MarkerSplitter;
  readonly #end: MarkerSplitter;
  readonly #target: string;
  #phase: "start" | "header" | "data" = "start";
  #header = "";
  #sink: HostSink | undefined;

  constructor(nonce: string, target: string) {
    const { start, end } = transferMarkers(nonce);
    this.#target = target;
    this.#start = new MarkerSplitter(start, () => {});
    this.#end = new MarkerSplitter(end, (bytes) => this.#sink?.write(bytes));
  }

  push(chunk: Buffer): { value: undefined; rest: Buffer } | undefined {
    let bytes: Buffer | undefined = chunk;
    if (this.#phase === "start") {
      bytes = this.#start.push(bytes);
      if (bytes === undefined) return undefined;
      this.#phase = "header";
    }
    if (this.#phase === "header") {
      const newline = bytes.indexOf(0x0a);
      if (newline < 0) {
        this.#header += bytes.toString("latin1");
        return undefined;
      }
      this.#header += bytes.subarray(0, newline).toString("latin1");
      bytes = bytes.subarray(newline + 1);
      this.#phase = "data";
      this.#sink = HostSink.open(this.#header, this.#target);
    }
    const rest = this.#end.push(bytes);
    return rest ? { value: undefined, rest } : undefined;
  }

  /** Puts the received file or folder in place; throws if the guest had nothing to send. */
  async commit(source: string, call: TransferCall): Promise<SourceKind> {
    const kind = this.#header[0];
    if (kind === "-") {
      throw new CorralError(
        ErrorCodes.NOT_FOUND,
        `${call.deadline.what}: ${source} does not exist in the guest`,
      );
    }
    if (kind === "x") {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${call.deadline.what}: ${source} in the guest is a ${this.#header.slice(1)}; only regular files and folders can be copied`,
      );
    }
    if (!this.#sink)
      throw new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `${call.deadline.what}: the guest sent no header`,
      );
    return this.#sink.commit();
  }

  async discard(): Promise<void> {
    await this.#sink?.discard();
  }
}
