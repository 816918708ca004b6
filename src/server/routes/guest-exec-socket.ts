// One WebSocket exec session: the client's first frame says what to run; the command's stdout and
// stderr go out as they come, each in frames of its own type; the client's stdin, eof, signal and
// resize frames drive it; an `exit` frame ends it. A dropped connection (or a bad frame) kills
// the command unless it was started with `detach: true`.

import type { FastifyRequest } from "fastify";
import type { TSchema, Type } from "typebox";
import { Value } from "typebox/value";
import type { RawData, WebSocket } from "ws";
import { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { RunningExec } from "../../manager/guest/guest-ops.ts";
import type { GuestResolver } from "./guest-context.ts";
import { decodeBase64, signalName, toExecRequest } from "./guest-exec-request.ts";
import { ExecClientFrame, ExecStart } from "./guest-schemas.ts";
import { CLOSE_NORMAL, closeWithError, sendFrame } from "./socket-frames.ts";

/** How long the client has to send its first frame: 30 s. */
const FIRST_FRAME_TIMEOUT_MS = 30_000;

type Start = Type.Static<typeof ExecStart>;
type ClientFrame = Type.Static<typeof ExecClientFrame>;

const FRAME_SCHEMAS = Object.fromEntries(
  ExecClientFrame.anyOf.map((schema) => [schema.properties.type.const, schema]),
) as unknown as Record<ClientFrame["type"], TSchema>;

/** Serves an exec on `socket` for VM `idOrName`; returns at once, the session runs on. */
export function serveExecSocket(
  socket: WebSocket,
  request: FastifyRequest,
  idOrName: string,
  guests: GuestResolver,
): void {
  let running: RunningExec | undefined;
  let start: Start | undefined;
  /** No more frames go either way: the command exited, or the session failed or closed. */
  let hasEnded = false;
  let hasExited = false;
  const queued: ClientFrame[] = [];
  const gone = new AbortController();

  const fail = (error: unknown) => {
    if (hasEnded) return;
    hasEnded = true;
    closeWithError(socket, error, request);
  };
  const firstFrameTimer = setTimeout(
    () =>
      fail(
        new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          `no first frame within ${FIRST_FRAME_TIMEOUT_MS / 1000} s: send the command as JSON ({ "command": … } or { "argv": […] })`,
        ),
      ),
    FIRST_FRAME_TIMEOUT_MS,
  );

  const drive = (frame: ClientFrame, exec: RunningExec) => {
    switch (frame.type) {
      case "stdin":
        return exec.writeStdin(decodeBase64(frame.data, "frame/data"));
      case "eof":
        return exec.closeStdin();
      case "signal":
        return exec.signal(signalName(frame.signal));
      case "resize":
        return exec.resize(frame.columns, frame.rows);
    }
  };

  const begin = async (first: Start) => {
    const execRequest = toExecRequest(first, "the first frame");
    const guest = await guests(idOrName);
    const { capabilities } = guest;
    if (!capabilities.streaming) {
      throw new CorralError(
        ErrorCodes.UNSUPPORTED,
        `VM "${idOrName}": its ${capabilities.channel} channel cannot stream a command's output: use POST …/guest/execute, which answers once the command has ended`,
      );
    }
    if (first.tty && !capabilities.pty) {
      throw new CorralError(
        ErrorCodes.UNSUPPORTED,
        `VM "${idOrName}": its ${capabilities.channel} channel has no pseudo-terminal: leave tty out`,
      );
    }
    const timeoutMs = first.timeoutMs === undefined ? Infinity : first.timeoutMs + 30_000;
    const deadline = new Deadline(
      `VM "${idOrName}": exec stream`,
      { signal: gone.signal },
      timeoutMs,
    );
    const exec = await guest.execStream(
      {
        ...execRequest,
        ...(first.tty !== undefined && { tty: first.tty }),
        ...(first.columns !== undefined && { columns: first.columns }),
        ...(first.rows !== undefined && { rows: first.rows }),
      },
      {
        onStdout: (chunk) => sendFrame(socket, { type: "stdout", data: chunk.toString("base64") }),
        onStderr: (chunk) => sendFrame(socket, { type: "stderr", data: chunk.toString("base64") }),
      },
      deadline,
    );
    running = exec;
    void exec.exited.then(
      () => {
        hasExited = true;
      },
      () => undefined,
    );
    if (hasEnded) {
      if (!first.detach) exec.signal("KILL");
      return;
    }
    for (const frame of queued.splice(0)) drive(frame, exec);
    const { exitCode, isTimedOut = false } = await exec.exited;
    if (hasEnded) return;
    hasEnded = true;
    sendFrame(socket, { type: "exit", exitCode, ...(isTimedOut && { isTimedOut }) });
    socket.close(CLOSE_NORMAL, "exited");
  };

  socket.on("message", (data: RawData, isBinary: boolean) => {
    if (hasEnded) return;
    try {
      const frame = parseFrame(data, isBinary, start === undefined);
      if (start === undefined) {
        clearTimeout(firstFrameTimer);
        start = frame as Start;
        begin(start).catch(fail);
        return;
      }
      if (running) drive(frame as ClientFrame, running);
      else queued.push(frame as ClientFrame);
    } catch (error) {
      fail(error);
    }
  });

  socket.on("close", () => {
    clearTimeout(firstFrameTimer);
    hasEnded = true;
    if (start?.detach) return;
    gone.abort(new Error("the client closed the exec socket"));
    if (running && !hasExited) {
      try {
        running.signal("KILL");
      } catch (error) {
        request.log.warn({ err: error }, "could not kill a command whose exec socket closed");
      }
    }
  });
}

/** A client frame, checked: the first against ExecStart, the others against their type's schema. */
function parseFrame(data: RawData, isBinary: boolean, isFirst: boolean): Start | ClientFrame {
  const where = isFirst ? "the first frame" : "a frame";
  if (isBinary) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `${where} is binary: send JSON text frames`);
  }
  let value: unknown;
  try {
    value = JSON.parse(String(data));
  } catch {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `${where} is not JSON`);
  }
  const type = (value as { type?: unknown } | null)?.type;
  const schema = isFirst ? ExecStart : FRAME_SCHEMAS[type as ClientFrame["type"]];
  if (schema === undefined) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${where} has type ${JSON.stringify(type)}: known types are stdin, eof, signal, resize`,
    );
  }
  const [first] = Value.Errors(schema, value);
  if (first !== undefined) {
    // TypeBox reports a field the schema does not know as a `false` schema at its path.
    const problem = first.keyword === "boolean" ? "is not a known field" : first.message;
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `${where}${first.instancePath} ${problem}`);
  }
  return value as Start | ClientFrame;
}
