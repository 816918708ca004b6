// Machine.spawn: a guest command with live stdin, signals and (optionally) a pseudo-terminal,
// over the backdoor shell (guest/interactive-exec.ts has the guest's side). The host drives its
// end: once the job has ended, or at the timeout or the caller's abort after killing it.

import type { WaitOptions } from "../deadline.ts";
import { Deadline, formatMs } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import type { ShellReply } from "../guest/backdoor-shell.ts";
import {
  type ControlLine,
  checkTerminalSize,
  controlText,
  newSessionKey,
  relayScript,
  signalName,
} from "../guest/interactive-exec.ts";
import { newNonce } from "../guest/shell-framing.ts";
import type { VmSession } from "./vm-session.ts";

export interface SpawnOptions extends WaitOptions {
  /** Called with stdout bytes as they arrive (with a tty: the terminal's output). */
  onStdout?: (chunk: Buffer) => void;
  /** Called with stderr bytes as they arrive (nothing with a tty: it goes to the terminal). */
  onStderr?: (chunk: Buffer) => void;
  /** Run in a pseudo-terminal of this size (columns and rows, 1–1000). */
  tty?: { columns: number; rows: number };
}

export interface SpawnResult {
  /** The exit status; 128 + n when signal n ended it (with a tty: `script`'s report of it). */
  exitCode: number;
  /** The timeout passed and the command was killed. */
  isTimedOut: boolean;
}

/** A command started by Machine.spawn. Calls after it has ended do nothing. */
export interface SpawnedCommand {
  /** Sends bytes to its stdin (text as UTF-8). */
  writeStdin(chunk: Uint8Array | string): void;
  /** Closes its stdin (with a tty: the terminal's end-of-file character). */
  closeStdin(): void;
  /**
   * Sends a signal (`TERM`, `SIGINT`, `9`…) to its process group; with a tty, to every process
   * on its terminal too. Throws CORRAL_INVALID_ARGUMENT for a name that is not a signal's.
   */
  signal(signal: string): void;
  /** Sets its terminal's size (SIGWINCH); nothing without a tty. */
  resize(columns: number, rows: number): void;
  /** Kills it (SIGKILL) at once. */
  kill(): void;
  /** Settles once it has ended; rejects when the guest channel breaks or the VM ends. */
  readonly exited: Promise<SpawnResult>;
}

/** How long a killed command has to report its end before the call gives up on it. */
const KILL_REPORT_MS = 10_000;
/** The relay's status when it could not open the transfer port. */
const EXIT_NO_PORT = 70;

export async function spawnCommand(
  session: VmSession,
  command: string,
  options: SpawnOptions,
): Promise<SpawnedCommand> {
  const shown = command.length > 200 ? `${command.slice(0, 200)}…` : command;
  const what = `${session.name}: spawn(${JSON.stringify(shown)})`;
  if (options.tty) checkTerminalSize(options.tty.columns, options.tty.rows);
  const deadline = session.deadline(what, options, Number.POSITIVE_INFINITY);
  const shell = await session.connect(deadline);
  const port = await session.transferPort(deadline);
  const key = newSessionKey();
  const jobNonce = newNonce();
  const stop = new AbortController();
  const sent = Promise.withResolvers<void>();
  let hasEnded = false;
  let hasJobEnded = false;
  let isTimedOut = false;
  const send = (line: ControlLine) => {
    if (hasEnded) return;
    if (line.kind === "end") hasEnded = true;
    port.sendControl(controlText(key, line));
  };
  const kill = () => {
    send({ kind: "signal", signal: "KILL" });
    send({ kind: "end" });
    setTimeout(() => stop.abort(), KILL_REPORT_MS).unref();
  };
  let isSent = false;
  // The timeout or the caller's abort: a running command is killed; one still waiting for its
  // turn on the shell is given up.
  const onAbort = () => {
    if (hasEnded) return;
    if (!isSent) return stop.abort();
    isTimedOut = !deadline.isCallerAbort;
    kill();
  };
  const running = shell.exec(
    relayScript(command, { key, jobNonce, tty: options.tty }),
    new Deadline(what, { signal: stop.signal }, Number.POSITIVE_INFINITY),
    () => session.describe(),
    {
      ...(options.onStdout ? { onStdout: options.onStdout } : {}),
      ...(options.onStderr ? { onStderr: options.onStderr } : {}),
      maxBuffer: 0,
      truncate: true,
      control: {
        nonce: jobNonce,
        onSent: () => {
          isSent = true;
          sent.resolve();
        },
        onStatus: () => {
          hasJobEnded = true;
          send({ kind: "end" });
        },
      },
    },
  );
  deadline.signal.addEventListener("abort", onAbort, { once: true });
  if (deadline.signal.aborted) onAbort();
  const exited = session
    .explained(running, `running ${JSON.stringify(shown)}`)
    .then((reply: ShellReply): SpawnResult => {
      if (!hasJobEnded && !isTimedOut && reply.exitCode === EXIT_NO_PORT) {
        throw new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          `${what}: the guest could not open its corral.xfer port (another process holds it)`,
          { machine: session.name },
        );
      }
      return { exitCode: reply.exitCode, isTimedOut };
    })
    .catch((error: unknown) => {
      if (!isSent && deadline.signal.aborted) throw deadline.error(session.describe());
      if (isTimedOut && !hasJobEnded) {
        throw new CorralError(
          ErrorCodes.TIMEOUT,
          `${what}: timed out after ${formatMs(deadline.timeoutMs)}, and the killed command did not report its end within ${KILL_REPORT_MS / 1000} s`,
          { cause: error, machine: session.name },
        );
      }
      throw error;
    })
    .finally(() => deadline.signal.removeEventListener("abort", onAbort));
  exited.catch(() => undefined);
  await Promise.race([sent.promise, exited]);
  return {
    writeStdin: (chunk) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      if (bytes.length > 0) send({ kind: "stdin", bytes });
    },
    closeStdin: () => send({ kind: "eof" }),
    signal: (signal) => send({ kind: "signal", signal: signalName(signal) }),
    resize: (columns, rows) => {
      checkTerminalSize(columns, rows);
      if (options.tty) send({ kind: "resize", columns, rows });
    },
    kill: () => {
      if (!hasEnded) kill();
    },
    exited,
  };
}
