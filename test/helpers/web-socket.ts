// A WebSocket client for tests of the exec and console routes, with the `ws` package (not
// corral's own client): opens a path on a daemon's unix socket, keeps every frame, and waits for
// frames or the close.

import WebSocket from "ws";

export interface TestSocket {
  socket: WebSocket;
  /** Text frames parsed as JSON, in order. */
  frames: Record<string, unknown>[];
  /** Binary frames, in order. */
  binary: Buffer[];
  /** The close code and reason, once closed. */
  closed: Promise<{ code: number; reason: string }>;
  /** Sends a JSON text frame. */
  send(frame: unknown): void;
  /** The first frame (from the start) that `matches`, once it has arrived. */
  waitFor(
    matches: (frame: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /**
   * Resolves with the binary frames so far, joined, once they contain `text` at or after byte
   * `fromByte` (default 0).
   */
  waitForText(text: string, options?: { timeoutMs?: number; fromByte?: number }): Promise<string>;
}

/** Opens `path` on the daemon at `socketPath` as a WebSocket; resolves once it is open. */
export async function openTestSocket(socketPath: string, path: string): Promise<TestSocket> {
  const socket = new WebSocket(`ws+unix://${socketPath}:${path}`);
  const frames: Record<string, unknown>[] = [];
  const binary: Buffer[] = [];
  const waiters = new Set<() => void>();
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  socket.on("message", (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (isBinary) binary.push(bytes);
    else frames.push(JSON.parse(bytes.toString()));
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  const wait = <T>(find: () => T | undefined, what: () => string, timeoutMs: number) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`not seen within ${timeoutMs} ms: ${what()}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    socket,
    frames,
    binary,
    closed,
    send: (frame) => socket.send(JSON.stringify(frame)),
    waitFor: (matches, timeoutMs = 30_000) =>
      wait(
        () => frames.find(matches),
        () => `a matching frame; got ${JSON.stringify(frames)}`,
        timeoutMs,
      ),
    waitForText: (text, { timeoutMs = 30_000, fromByte = 0 } = {}) =>
      wait(
        () => {
          const all = Buffer.concat(binary);
          return all.subarray(fromByte).includes(text) ? all.toString() : undefined;
        },
        () =>
          `${JSON.stringify(text)}; got ${JSON.stringify(Buffer.concat(binary).toString().slice(-2000))}`,
        timeoutMs,
      ),
  };
}

/** stdout or stderr of an exec session's frames so far, decoded. */
export function streamText(frames: Record<string, unknown>[], type: "stdout" | "stderr"): string {
  return Buffer.concat(
    frames
      .filter((frame) => frame.type === type)
      .map((frame) => Buffer.from(frame.data as string, "base64")),
  ).toString();
}
