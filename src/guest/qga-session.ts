// The client's hold on the agent's stream: calls take turns, each finds the stream open (opened
// again if it closed: the agent or QEMU restarted) and in step (synced if a reply went missing)
// before its request goes out.

import type { Duplex } from "node:stream";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { ChannelLock } from "./channel-lock.ts";
import type { ReadLimit } from "./chunk-reader.ts";
import { QgaConnection, QgaError, type QgaReply } from "./qga-protocol.ts";

/** Opens the stream to the agent (for QEMU: the unix socket of its virtio-serial port). */
export type QgaOpen = (deadline: Deadline) => Promise<Duplex>;

/**
 * Ties the calls of one exec or transfer to the connection they started on: a pid or handle
 * means nothing to an agent that started again, so they fail once that connection closed.
 */
export interface Pin {
  connection?: QgaConnection;
}

export class QgaSession {
  readonly #open: QgaOpen;
  readonly #lock = new ChannelLock();
  #connection: QgaConnection | undefined;
  #isClosed = false;

  constructor(open: QgaOpen) {
    this.#open = open;
  }

  /** The connection in use, if one is open. */
  get connection(): QgaConnection | undefined {
    return this.#connection?.closedError ? undefined : this.#connection;
  }

  /**
   * Sends one request and reads its reply, in turn with every other call. Fails with a QgaError
   * for the agent's error, CORRAL_GUEST_CHANNEL_BROKEN (naming `command`) when the stream
   * cannot be opened, closes or carries garbage, the deadline's error when no reply comes in
   * time; `context` ends those errors (what the failure leaves behind). With `pin`, only on the
   * connection its first call used.
   */
  call(
    command: string,
    args: Record<string, unknown> | undefined,
    deadline: Deadline,
    context: readonly string[] = [],
    pin?: Pin,
  ): Promise<unknown> {
    return this.exclusive(
      command,
      deadline,
      async (connection) => {
        if (pin) pin.connection ??= connection;
        deadline.step(`qga ${command}`);
        connection.send(command, args);
        let reply: QgaReply;
        try {
          reply = await connection.reply(
            limitOf(deadline, [`The agent did not answer ${command}.`, ...context]),
          );
        } catch (error) {
          connection.needsSync = true;
          throw error;
        }
        if ("error" in reply) throw new QgaError(command, reply.error.class, reply.error.desc);
        return reply.return;
      },
      context,
      pin,
    ).catch((error: unknown) => {
      if (!isChannelBroken(error)) throw error;
      throw new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `${command}: ${(error as Error).message}`,
        { cause: error, details: context },
      );
    });
  }

  /** Runs `fn` with the open, in-step connection once the calls before it are done. */
  exclusive<T>(
    what: string,
    deadline: Deadline,
    fn: (connection: QgaConnection) => Promise<T>,
    context: readonly string[] = [],
    pin?: Pin,
  ): Promise<T> {
    return this.#lock.run(what, this.#lockLimit(deadline), async () => {
      if (pin?.connection && (pin.connection !== this.#connection || pin.connection.closedError)) {
        throw (
          pin.connection.closedError ??
          new CorralError(
            ErrorCodes.GUEST_CHANNEL_BROKEN,
            "the guest agent connection was reopened",
          )
        );
      }
      return fn(await this.#ready(deadline, context));
    });
  }

  /** Whether close() was called: no call can succeed any more. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Closes the stream; calls in flight fail with CORRAL_GUEST_CHANNEL_BROKEN. Idempotent. */
  close(): void {
    this.#isClosed = true;
    this.#connection?.destroy();
  }

  /** The open, in-step connection: opened (again) if there is none, synced if out of step. */
  async #ready(deadline: Deadline, context: readonly string[]): Promise<QgaConnection> {
    const closed = () =>
      new CorralError(ErrorCodes.GUEST_CHANNEL_BROKEN, "the guest agent client was closed");
    if (this.#isClosed) throw closed();
    let connection = this.connection;
    if (!connection) {
      this.#connection?.destroy();
      this.#connection = undefined;
      deadline.step("opening the guest agent's channel");
      let stream: Duplex;
      try {
        stream = await this.#open(deadline);
      } catch (error) {
        if (error instanceof CorralError) throw error;
        throw new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          `cannot open the guest agent's channel: ${(error as Error).message}`,
          { cause: error },
        );
      }
      connection = new QgaConnection(stream);
      if (this.#isClosed) {
        connection.destroy();
        throw closed();
      }
      this.#connection = connection;
    }
    if (connection.needsSync) {
      deadline.step("qga guest-sync-delimited");
      await connection.sync(
        limitOf(deadline, [
          "The agent did not answer guest-sync-delimited: is qemu-ga running in the guest?",
          ...context,
        ]),
      );
    }
    return connection;
  }

  #lockLimit(deadline: Deadline): ReadLimit {
    return {
      signal: deadline.signal,
      error: () => {
        const holder = this.#lock.holder;
        return deadline.error(
          holder ? [`It was waiting for an earlier guest agent call to end: ${holder}`] : [],
        );
      },
    };
  }
}

function limitOf(deadline: Deadline, context: readonly string[]): ReadLimit {
  return { signal: deadline.signal, error: () => deadline.error(context) };
}

/** Whether `error` says the stream is gone or out of step. */
export function isChannelBroken(error: unknown): boolean {
  return error instanceof CorralError && error.code === ErrorCodes.GUEST_CHANNEL_BROKEN;
}
