// The unix sockets between corral and one QEMU process: its monitor (QMP), the guest's ports (the
// guest agent's only when asked for) and, for a persistent VM, its serial console. An owned VM's QEMU dials sockets corral listens on (so
// nothing is left listening when corral dies); a persistent VM's QEMU listens itself, so any
// corral process can dial it again later.

import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../../deadline.ts";
import { UnixListener } from "../../host/unix-listener.ts";

export type QemuSocketName = "qmp" | "shell" | "stdout" | "stderr" | "xfer" | "qga" | "console";

/** Names of the sockets of each mode: a persistent VM's console is a socket too. */
export const OWNED_SOCKETS = ["qmp", "shell", "stdout", "stderr", "xfer"] as const;
export const PERSISTENT_SOCKETS = [...OWNED_SOCKETS, "console"] as const;

/** Which optional sockets a VM has. */
export interface SocketChoice {
  /** The guest agent's port (`org.qemu.guest_agent.0`). */
  guestAgent?: boolean | undefined;
}

/** An owned VM's guest agent chardev dials again this many seconds after its peer closed. */
export const QGA_REDIAL_S = 1;

const DIAL_RETRY_MS = 10;

export interface QemuSockets {
  readonly paths: Partial<Record<QemuSocketName, string>>;
  /** A connection to socket `name`; the caller races it against QEMU's exit and the deadline. */
  open(name: QemuSocketName, deadline: Deadline): Promise<Socket>;
  close(): void;
}

/** Sockets corral listens on, one connection each: an owned VM. */
export class ListeningSockets implements QemuSockets {
  readonly paths: Partial<Record<QemuSocketName, string>> = {};
  readonly #listeners = new Map<QemuSocketName, UnixListener>();

  static async listen(
    stateDir: string,
    suffix: string,
    choice: SocketChoice = {},
  ): Promise<ListeningSockets> {
    const sockets = new ListeningSockets();
    const names: QemuSocketName[] = [
      ...OWNED_SOCKETS,
      ...(choice.guestAgent ? ["qga" as const] : []),
    ];
    try {
      for (const name of names) {
        // The agent's client closes and opens its stream again (a resync, a restarted agent):
        // QEMU dials anew each time.
        const listener = await UnixListener.listen(join(stateDir, `${name}-${suffix}.sock`), {
          isRedialled: name === "qga",
        });
        sockets.#listeners.set(name, listener);
        sockets.paths[name] = listener.path;
      }
    } catch (error) {
      sockets.close();
      throw error;
    }
    return sockets;
  }

  open(name: QemuSocketName): Promise<Socket> {
    const listener = this.#listeners.get(name);
    if (!listener) return Promise.reject(new Error(`no ${name} socket`));
    return name === "qga" ? listener.next() : listener.accepted;
  }

  close(): void {
    for (const listener of this.#listeners.values()) listener.close();
  }
}

/** Sockets QEMU listens on, dialled anew by each corral process: a persistent VM. */
export class DialingSockets implements QemuSockets {
  readonly paths: Partial<Record<QemuSocketName, string>>;
  readonly #open = new Set<Socket>();
  #isClosed = false;

  constructor(paths: Partial<Record<QemuSocketName, string>>) {
    this.paths = paths;
  }

  static at(stateDir: string, choice: SocketChoice = {}): DialingSockets {
    const names: QemuSocketName[] = [
      ...PERSISTENT_SOCKETS,
      ...(choice.guestAgent ? ["qga" as const] : []),
    ];
    return new DialingSockets(
      Object.fromEntries(names.map((name) => [name, join(stateDir, `${name}.sock`)])),
    );
  }

  /** Dials `name`, retrying while QEMU has not created it yet, until the deadline. */
  async open(name: QemuSocketName, deadline: Deadline): Promise<Socket> {
    const path = this.paths[name];
    if (!path) throw new Error(`no ${name} socket`);
    for (;;) {
      try {
        const socket = await dial(path);
        if (this.#isClosed) {
          socket.destroy();
          throw new Error(`${path}: closed`);
        }
        socket.on("error", () => {});
        this.#open.add(socket);
        socket.once("close", () => this.#open.delete(socket));
        return socket;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const isRetryable = code === "ENOENT" || code === "ECONNREFUSED";
        if (!isRetryable || deadline.signal.aborted || this.#isClosed) throw error;
        await sleep(DIAL_RETRY_MS, undefined, { signal: deadline.signal }).catch(() => undefined);
      }
    }
  }

  /** Closes every connection and stops dialling. */
  close(): void {
    this.#isClosed = true;
    for (const socket of this.#open) socket.destroy();
    this.#open.clear();
  }
}

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}
