// QMP client: JSON lines over the unix socket QEMU's monitor connects to. Negotiates
// capabilities, keeps several commands in flight matched by `id`, delivers events, and gives
// every command its own deadline. https://www.qemu.org/docs/master/interop/qmp-spec.html

import type { Socket } from "node:net";
import { Deadline, type WaitOptions } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** QEMU answered a command with an error; `errorClass` and `description` are QEMU's. */
export class QmpError extends CorralError {
  readonly errorClass: string;
  readonly description: string;
  constructor(command: string, errorClass: string, description: string) {
    super(ErrorCodes.QMP_ERROR, `QMP ${command}: ${errorClass}: ${description}`);
    this.errorClass = errorClass;
    this.description = description;
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

const COMMAND_TIMEOUT_MS = 30_000;

export class QmpClient {
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(event: QmpEvent) => void>();
  #nextId = 1;
  #partial = "";
  #greeting: ((value: Record<string, unknown>) => void) | undefined;
  #closed: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => this.#receive(text));
    const onEnd = (error?: Error) => {
      this.#closed ??= new CorralError(ErrorCodes.QMP_CLOSED, "the QMP connection closed", {
        ...(error ? { cause: error } : {}),
      });
      for (const pending of this.#pending.values()) pending.reject(this.#closed);
      this.#pending.clear();
    };
    socket.on("close", () => onEnd());
    socket.on("error", (error) => onEnd(error));
  }

  /** Reads QEMU's greeting on `socket` and leaves capabilities negotiation mode. */
  static async connect(socket: Socket, options: WaitOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(socket);
    const deadline = new Deadline("QMP greeting", options, COMMAND_TIMEOUT_MS);
    await new Promise<Record<string, unknown>>((resolve, reject) => {
      const onAbort = () => reject(deadline.error());
      deadline.signal.addEventListener("abort", onAbort, { once: true });
      socket.once("close", () =>
        reject(new CorralError(ErrorCodes.QMP_CLOSED, "QMP closed before its greeting")),
      );
      client.#greeting = (greeting) => {
        deadline.signal.removeEventListener("abort", onAbort);
        resolve(greeting);
      };
    });
    await client.execute("qmp_capabilities", {}, options);
    return client;
  }

  /** Runs `command` with `args`; resolves with its `return` value or rejects with a QmpError. */
  execute<T = unknown>(
    command: string,
    args: Record<string, unknown> = {},
    options: WaitOptions | Deadline = {},
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextId++;
    const deadline = Deadline.of(options, `QMP ${command}`, COMMAND_TIMEOUT_MS);
    deadline.step(`QMP ${command}`);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.#pending.delete(id);
        reject(deadline.error());
      };
      const settle =
        <V>(fn: (value: V) => void) =>
        (value: V) => {
          deadline.signal.removeEventListener("abort", onAbort);
          fn(value);
        };
      this.#pending.set(id, {
        command,
        resolve: settle(resolve as (v: unknown) => void),
        reject: settle(reject),
      });
      if (deadline.signal.aborted) return onAbort();
      deadline.signal.addEventListener("abort", onAbort, { once: true });
      const message =
        Object.keys(args).length > 0
          ? { execute: command, arguments: args, id }
          : { execute: command, id };
      this.#socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /** Calls `listener` with every event from now on; returns the unsubscribe function. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#socket.destroy();
  }

  #receive(text: string): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // not JSON: QEMU only sends JSON on this socket; ignore noise
      }
      this.#dispatch(message);
    }
  }

  #dispatch(message: Record<string, unknown>): void {
    if ("QMP" in message) {
      this.#greeting?.(message.QMP as Record<string, unknown>);
      this.#greeting = undefined;
      return;
    }
    if (typeof message.event === "string") {
      const event = message as unknown as QmpEvent;
      event.data ??= {};
      for (const listener of this.#listeners) listener(event);
      return;
    }
    const pending = typeof message.id === "number" ? this.#pending.get(message.id) : undefined;
    if (!pending) return;
    this.#pending.delete(message.id as number);
    if ("error" in message) {
      const error = message.error as { class?: string; desc?: string };
      pending.reject(
        new QmpError(pending.command, error.class ?? "GenericError", error.desc ?? ""),
      );
    } else {
      pending.resolve(message.return);
    }
  }
}
