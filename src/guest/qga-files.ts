// Files through the guest agent: guest-file-open, then guest-file-read or guest-file-write one
// chunk (base64 in a JSON line) per round trip, then guest-file-close, which runs whatever
// happened before it, with a budget of its own.

import { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { QgaError } from "./qga-protocol.ts";

/**
 * Bytes per guest-file-read. Measured against the host's qemu-ga 7.2 (32 MiB, agent CPU per
 * MiB): 64 KiB reads cost it 8 ms/MiB, 256 KiB to 4 MiB 13–25 ms/MiB: a reply larger than the
 * socket's buffer has the agent spin on EAGAIN until the client drains it.
 */
export const FILE_READ_CHUNK_BYTES = 64 * 1024;
/**
 * Bytes per guest-file-write. The agent's JSON parser costs it ~30 ms/MiB whatever the chunk
 * (64 KiB to 4 MiB), so larger chunks only save round trips; past 1 MiB a line holds it longer.
 */
export const FILE_WRITE_CHUNK_BYTES = 1024 * 1024;
/** How long closing a handle may take when the transfer itself has failed or run out of time. */
const CLOSE_TIMEOUT_MS = 5000;

/** What the file transfers need from the client. */
export interface QgaFileAgent {
  call(command: string, args: Record<string, unknown>, deadline: Deadline): Promise<unknown>;
  /** Remembers a handle whose close could not be sent, to close before a later transfer. */
  closeLater(handle: number): void;
}

interface FileRead {
  count: number;
  "buf-b64": string;
  eof: boolean;
}

/**
 * Reads the file at `path` in the guest chunk by chunk; the handle is closed when the reading
 * ends, fails or is stopped early (`break`). Fails with CORRAL_GUEST_AGENT_ERROR when the agent
 * cannot open or read it (its message says why: no such file, a directory…).
 */
export async function* readFileChunks(
  agent: QgaFileAgent,
  path: string,
  deadline: Deadline,
  chunkBytes = FILE_READ_CHUNK_BYTES,
): AsyncGenerator<Buffer> {
  const handle = await openFile(agent, path, "rb", deadline);
  try {
    for (;;) {
      const read = (await agent.call(
        "guest-file-read",
        { handle, count: chunkBytes },
        deadline,
      )) as FileRead;
      if (read.count > 0) yield Buffer.from(read["buf-b64"], "base64");
      if (read.eof || read.count === 0) return;
    }
  } finally {
    await closeFile(agent, handle);
  }
}

/**
 * Writes `data` to the file at `path` in the guest, replacing it (or appending, with `append`),
 * and closes it; resolves with the number of bytes written. A failed close (the agent flushes
 * the file then) fails the write. qemu-ga 7.2 creates a missing file with mode 0666.
 */
export async function writeFile(
  agent: QgaFileAgent,
  path: string,
  data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  deadline: Deadline,
  options: { append?: boolean; chunkBytes?: number } = {},
): Promise<number> {
  const handle = await openFile(agent, path, options.append ? "ab" : "wb", deadline);
  let written = 0;
  try {
    for await (const chunk of rechunk(data, options.chunkBytes ?? FILE_WRITE_CHUNK_BYTES)) {
      let rest = chunk;
      while (rest.length > 0) {
        const { count } = (await agent.call(
          "guest-file-write",
          { handle, "buf-b64": rest.toString("base64") },
          deadline,
        )) as { count: number };
        if (!(count > 0)) {
          throw new CorralError(
            ErrorCodes.GUEST_AGENT_ERROR,
            `guest-file-write ${path}: the agent wrote nothing of ${rest.length} bytes`,
          );
        }
        written += count;
        rest = rest.subarray(count);
      }
    }
  } catch (error) {
    await closeFile(agent, handle);
    throw error;
  }
  const closeError = await closeFile(agent, handle);
  if (closeError) throw closeError;
  return written;
}

async function openFile(
  agent: QgaFileAgent,
  path: string,
  mode: string,
  deadline: Deadline,
): Promise<number> {
  if (path === "" || path.includes("\0")) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `guest-file-open: ${JSON.stringify(path)} is not a path (empty, or holds a NUL character)`,
    );
  }
  return (await agent.call("guest-file-open", { path, mode }, deadline)) as number;
}

/** Closes `handle` within its own budget; returns the error if that failed. */
async function closeFile(agent: QgaFileAgent, handle: number): Promise<unknown> {
  const deadline = new Deadline(`guest-file-close ${handle}`, {}, CLOSE_TIMEOUT_MS);
  try {
    await agent.call("guest-file-close", { handle }, deadline);
    return undefined;
  } catch (error) {
    // The agent's own refusal is final; a channel that failed may carry the close later.
    if (!(error instanceof QgaError)) agent.closeLater(handle);
    return error;
  }
}

/** `data` in pieces of `size` bytes (the last one shorter). */
async function* rechunk(
  data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  size: number,
): AsyncGenerator<Buffer> {
  const source = data instanceof Uint8Array ? [data] : data;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    let rest = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (pendingBytes + rest.length >= size) {
      const take = size - pendingBytes;
      yield Buffer.concat([...pending, rest.subarray(0, take)]);
      pending = [];
      pendingBytes = 0;
      rest = rest.subarray(take);
    }
    if (rest.length > 0) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}
