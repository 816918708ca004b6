// The guest's ports over vsock, as Firecracker and Cloud Hypervisor expose them: one host unix
// socket for the VM; a connection asks for a guest port with `CONNECT <port>\n` and the VMM
// answers `OK <host port>\n` once the guest accepted, or closes the connection when nothing in
// the guest listens there (docs/vsock.md of both projects). What follows the answer is the
// guest's stream.

import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { GuestPort, GuestTransport } from "./transport.ts";

/** The longest answer line read before it is taken for garbage. */
const MAX_REPLY_BYTES = 64;
const RETRY_MS = 50;

/** The guest refused (nothing listens on its port yet), or the VMM's socket is not there yet. */
export class VsockRefusedError extends CorralError {
  constructor(message: string) {
    super(ErrorCodes.GUEST_CHANNEL_BROKEN, message);
  }
}

/**
 * A stream to guest vsock `port` through the VMM's hybrid socket at `socketPath`, once the VMM
 * answered `OK`. Throws VsockRefusedError when the connection is refused or closed without an
 * answer, CORRAL_GUEST_CHANNEL_BROKEN when the answer is not `OK <n>`, and the deadline's error.
 */
export async function connectHybridVsock(
  socketPath: string,
  port: number,
  deadline: Deadline,
): Promise<Socket> {
  const socket = connect(socketPath);
  socket.on("error", () => {});
  try {
    return await deadline.race(handshake(socket, socketPath, port));
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

// The answer is read in paused mode ('readable'), so that nothing after it is lost: once the
// listener is gone the stream is neither flowing nor paused, and the caller's reads get the rest.
function handshake(socket: Socket, socketPath: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const done = (): void => {
      socket.off("readable", onReadable);
      socket.off("close", onClose);
      socket.off("error", onError);
      socket.off("connect", onConnect);
    };
    const onConnect = (): void => void socket.write(`CONNECT ${port}\n`);
    const onError = (error: NodeJS.ErrnoException): void => {
      done();
      const code = error.code ?? "";
      if (code === "ENOENT" || code === "ECONNREFUSED") {
        reject(new VsockRefusedError(`${socketPath}: ${code} (the VMM's vsock socket is not up)`));
      } else reject(error);
    };
    const onClose = (): void => {
      done();
      if (received.length > 0) {
        reject(garbage(port, received));
        return;
      }
      reject(
        new VsockRefusedError(
          `vsock port ${port}: the VMM closed the connection (nothing listens in the guest yet)`,
        ),
      );
    };
    const onReadable = (): void => {
      for (let chunk = socket.read() as Buffer | null; chunk; chunk = socket.read()) {
        received = Buffer.concat([received, chunk]);
      }
      const end = received.indexOf(0x0a);
      if (end === -1) {
        if (received.length <= MAX_REPLY_BYTES) return;
        done();
        reject(garbage(port, received));
        return;
      }
      done();
      const line = received.subarray(0, end).toString("latin1");
      if (!/^OK \d+$/.test(line)) {
        reject(garbage(port, received.subarray(0, end)));
        return;
      }
      const rest = received.subarray(end + 1);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.once("connect", onConnect);
    socket.on("readable", onReadable);
    socket.once("close", onClose);
    socket.on("error", onError);
  });
}

function garbage(port: number, bytes: Buffer): CorralError {
  const shown = JSON.stringify(bytes.subarray(0, MAX_REPLY_BYTES).toString("latin1"));
  return new CorralError(
    ErrorCodes.GUEST_CHANNEL_BROKEN,
    `vsock port ${port}: the VMM answered CONNECT with ${shown}, not "OK <port>"`,
  );
}

/** Guest vsock ports of corral's guest services (the image's socket units listen on them). */
export const GUEST_VSOCK_PORTS: Readonly<Record<Exclude<GuestPort, "qga">, number>> = {
  shell: 7700,
  stdout: 7701,
  stderr: 7702,
  xfer: 7703,
};

/**
 * The guest's ports over a hybrid vsock socket: each open() dials its guest port until the guest
 * listens there (a guest still booting refuses) or the deadline; garbage fails at once.
 */
export class HybridVsockTransport implements GuestTransport {
  readonly isShellPerConnection = true;
  readonly socketPath: string;
  readonly #ports: Readonly<Partial<Record<GuestPort, number>>>;

  constructor(
    socketPath: string,
    ports: Readonly<Partial<Record<GuestPort, number>>> = GUEST_VSOCK_PORTS,
  ) {
    this.socketPath = socketPath;
    this.#ports = ports;
  }

  async open(port: GuestPort, deadline: Deadline): Promise<Socket> {
    const vsockPort = this.#ports[port];
    if (vsockPort === undefined) {
      throw new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `the guest's ${port} port has no vsock port in this VM`,
      );
    }
    for (;;) {
      try {
        return await connectHybridVsock(this.socketPath, vsockPort, deadline);
      } catch (error) {
        if (!(error instanceof VsockRefusedError)) throw error;
        deadline.step(error.message);
        await deadline.race(sleep(RETRY_MS));
      }
    }
  }
}
