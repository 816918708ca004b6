// The QEMU guest agent's wire protocol on one stream: a JSON request per line, one JSON reply per
// line with no id (so one request at a time), and the `guest-sync-delimited` resync that finds
// the start of the next reply behind a 0xFF byte. https://www.qemu.org/docs/master/interop/qemu-ga-ref.html

import { randomInt } from "node:crypto";
import type { Duplex } from "node:stream";
import { CorralError, describeValue, ErrorCodes } from "../errors.ts";
import { ChunkReader, type ReadLimit, type Step } from "./chunk-reader.ts";

/** The byte that flushes the agent's JSON parser and marks the start of a delimited reply. */
const SENTINEL = 0xff;
const NEWLINE = 0x0a;

/** The agent answered a command with an error; `agentClass` and `description` are the agent's. */
export class QgaError extends CorralError {
  readonly command: string;
  /** The agent's error class: `GenericError`, `CommandNotFound`, `InvalidParameter`… */
  readonly agentClass: string;
  /** The agent's own message (`desc`). */
  readonly description: string;
  constructor(command: string, agentClass: string, description: string) {
    super(
      ErrorCodes.GUEST_AGENT_ERROR,
      `${command}: the guest agent answered ${agentClass}: ${description}`,
    );
    this.command = command;
    this.agentClass = agentClass;
    this.description = description;
  }
}

/** One reply: the command's `return` value, or the agent's error. */
export type QgaReply = { return: unknown } | { error: { class: string; desc: string } };

/** A random id for guest-sync-delimited: a whole number JavaScript holds exactly. */
function newSyncId(): number {
  return randomInt(1, 2 ** 48);
}

/**
 * One open stream to the agent. It is in step once a sync has found its reply; a request whose
 * reply did not come (deadline, garbage) leaves it out of step until the next sync.
 */
export class QgaConnection {
  readonly #stream: Duplex;
  readonly #reader: ChunkReader;
  /** Whether the next reply on the stream may not be the answer to the next request. */
  needsSync = true;

  constructor(stream: Duplex) {
    this.#stream = stream;
    this.#reader = new ChunkReader("guest agent", stream);
  }

  /** Why the stream is gone, once it is. */
  get closedError(): Error | undefined {
    return this.#reader.closedError ?? (this.#stream.destroyed ? closedError() : undefined);
  }

  /** Writes one request: `{ execute, arguments }` and a newline. */
  send(command: string, args?: Record<string, unknown>, prefix?: Buffer): void {
    const closed = this.closedError;
    if (closed) throw closed;
    const json = JSON.stringify(
      args ? { execute: command, arguments: args } : { execute: command },
    );
    this.#stream.write(prefix ? Buffer.concat([prefix, Buffer.from(`${json}\n`)]) : `${json}\n`);
  }

  /**
   * Reads the next reply. A line that is not a reply leaves the connection out of step and fails
   * with CORRAL_GUEST_CHANNEL_BROKEN; so does the stream closing.
   */
  async reply(limit: ReadLimit): Promise<QgaReply> {
    let line: Buffer;
    do line = await this.#reader.read(limit, lineStep());
    while (line.toString().trim() === "");
    // A delimited reply (to guest-sync-delimited) starts with the sentinel.
    const text = (line[0] === SENTINEL ? line.subarray(1) : line).toString("utf8");
    const reply = parseReply(text);
    if (reply) return reply;
    this.needsSync = true;
    throw new CorralError(
      ErrorCodes.GUEST_CHANNEL_BROKEN,
      `the guest agent sent something that is not a reply: ${describeValue(text)}`,
    );
  }

  /**
   * Puts the stream in step: sends 0xFF (the agent drops any partial request it holds, and
   * answers the stray byte with an error line) and `guest-sync-delimited` with a random id, then
   * drops everything up to a 0xFF in the replies and every line after it that is not the answer
   * carrying that id: stale replies of earlier requests, error lines about garbage.
   */
  async sync(limit: ReadLimit): Promise<void> {
    const id = newSyncId();
    this.send("guest-sync-delimited", { id }, Buffer.of(SENTINEL));
    await this.#reader.read(limit, syncStep(id));
    this.needsSync = false;
  }

  /**
   * Sends `guest-sync-delimited` behind a request that has no reply on success (as
   * guest-shutdown), with no 0xFF first: the request's error, if any, is the next reply, else the
   * sync's. Returns the id to expect.
   */
  sendConfirm(): number {
    const id = newSyncId();
    this.send("guest-sync-delimited", { id });
    return id;
  }

  destroy(): void {
    this.#stream.destroy();
  }
}

/** The reply `text` holds, or undefined when it is not one. */
function parseReply(text: string): QgaReply | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  if ("return" in message) return message as QgaReply;
  if ("error" in message && typeof message.error === "object" && message.error !== null) {
    const error = message.error as { class?: unknown; desc?: unknown };
    return {
      error: {
        class: typeof error.class === "string" ? error.class : "GenericError",
        desc: typeof error.desc === "string" ? error.desc : "",
      },
    };
  }
  return undefined;
}

/** A step that yields the next line, without its newline. */
function lineStep(): Step<Buffer> {
  const parts: Buffer[] = [];
  return (chunk) => {
    const end = chunk.indexOf(NEWLINE);
    if (end < 0) {
      parts.push(chunk);
      return undefined;
    }
    parts.push(chunk.subarray(0, end));
    return { value: Buffer.concat(parts), rest: chunk.subarray(end + 1) };
  };
}

/**
 * A step that ends after the line `{"return": id}`, counting only lines after a 0xFF; every
 * 0xFF starts a new line (what came before it was the tail of something stale).
 */
function syncStep(id: number): Step<undefined> {
  let hasSentinel = false;
  let parts: Buffer[] = [];
  return (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      const sentinel = chunk.indexOf(SENTINEL, at);
      const end = hasSentinel ? chunk.indexOf(NEWLINE, at) : -1;
      if (sentinel >= 0 && (end < 0 || sentinel < end)) {
        hasSentinel = true;
        parts = [];
        at = sentinel + 1;
        continue;
      }
      if (end < 0) {
        if (hasSentinel) parts.push(chunk.subarray(at));
        return undefined;
      }
      parts.push(chunk.subarray(at, end));
      const reply = parseReply(Buffer.concat(parts).toString("utf8"));
      parts = [];
      at = end + 1;
      if (reply && "return" in reply && reply.return === id) {
        return { value: undefined, rest: chunk.subarray(at) };
      }
    }
    return undefined;
  };
}

function closedError(): CorralError {
  return new CorralError(ErrorCodes.GUEST_CHANNEL_BROKEN, "the guest agent connection closed");
}
