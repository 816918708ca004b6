// The guest channel over the backdoor shell: waits for the banner, sends the prelude, then runs
// one framed command at a time (shell-framing.ts, shell-prelude.ts). Calls are queued, each
// within its own deadline. A shell that dies is noticed at once (its watcher says so on hvc0);
// when the guest starts a new one (a new banner), the next call takes it over.

import type { Readable, Writable } from "node:stream";
import type { Deadline } from "../deadline.ts";
import { CorralError, ErrorCodes } from "../errors.ts";
import { ChannelLock } from "./channel-lock.ts";
import { ChunkReader, type ReadLimit } from "./chunk-reader.ts";
import { type ConsoleEvent, ConsoleEvents } from "./console-events.ts";
import { commandLine, MarkerSplitter, newNonce, newToken } from "./shell-framing.ts";
import { KILL_GRACE_SECONDS, sessionMarker, shellPrelude } from "./shell-prelude.ts";
import { Reply, type ReplyStatus } from "./shell-reply.ts";

/** Bytes of each output stream kept in a result unless `maxBuffer` says otherwise. */
export const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;
/** How much longer than a limit the guest enforces the host waits for the guest's report. */
const REPORT_MARGIN_MS = 3000;
/** How long after a shell's death the guest has to start a new one. */
const RESTART_WAIT_MS = 10_000;
/** A longer in-guest limit means none: it would outlive any test (and bash's `read -t`). */
const MAX_GUEST_LIMIT_MS = 2 ** 31 - 1;

export interface ExecOptions {
  /** Called with stdout bytes as they arrive. */
  onStdout?: (chunk: Buffer) => void;
  /** Called with stderr bytes as they arrive. */
  onStderr?: (chunk: Buffer) => void;
  /**
   * Bytes of each of stdout and stderr kept in the result (default 64 MiB). When a stream
   * writes more, the rest is passed to its callback but not kept, and the call fails with
   * CORRAL_OUTPUT_TOO_LARGE once the command has ended.
   */
  maxBuffer?: number;
  /**
   * Keep the first `maxBuffer` bytes of a stream that writes more and return normally (the
   * reply says which streams were cut) instead of failing with CORRAL_OUTPUT_TOO_LARGE.
   */
  truncate?: boolean;
  /** Run in the shell itself, not a subshell: for corral scripts that leave no state behind. */
  inShell?: boolean;
  /** See CommandLineOptions.leadingLine. */
  leadingLine?: string;
  /**
   * The guest keeps the deadline: `kill` gives the command the deadline's remaining time as an
   * in-guest limit (its process group is killed then, and the reply says so); `self` is for
   * corral's wait scripts, which end by themselves in time. The host then waits a little past
   * the deadline for the guest's report; its errors still name the caller's limit.
   */
  guestDeadline?: "kill" | "self";
  /** The caller's own abort signal: the host's wait past the deadline still honours it. */
  signal?: AbortSignal;
  /**
   * For a command that reports more than its own end (interactive-exec.ts): `onSent` is called
   * once its line has gone to the guest, `onStatus` with each status line of nonce `nonce` that
   * comes while the command runs.
   */
  control?: ExecControl;
}

export interface ExecControl {
  nonce: string;
  onSent(): void;
  onStatus(status: ReplyStatus): void;
}

export interface ExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** A result, and whether the guest killed the command at its limit (`guestDeadline: "kill"`). */
export interface ShellReply extends ExecResult {
  isKilled: boolean;
  /** With `truncate`: the stream wrote more than `maxBuffer` bytes, of which only the first are kept. */
  isStdoutTruncated?: boolean;
  isStderrTruncated?: boolean;
}

export interface ShellStreams {
  /** hvc0: commands go in, exit codes come out. */
  console: Readable & Writable;
  /** The `corral.stdout` virtio port. */
  stdout: Readable;
  /** The `corral.stderr` virtio port. */
  stderr: Readable;
}

export class BackdoorShell {
  readonly #input: Writable;
  readonly #stdout: ChunkReader;
  readonly #stderr: ChunkReader;
  readonly #events = new ConsoleEvents();
  readonly #lock = new ChannelLock();
  readonly #listeners = new Set<() => void>();
  /** Replies whose status may still come: the running command and one that overran. */
  readonly #replies = new Map<string, Reply>();
  /** Status lines of other nonces that a running command reports (ExecOptions.control). */
  readonly #watchers = new Map<string, (status: ReplyStatus) => void>();
  /** Why the channel is unusable for good. */
  #broken: Error | undefined;
  /** A command whose call ended before it did: the next call waits for its end first. */
  #unfinished: Reply | undefined;
  /** The session (prelude) of the shell in use; undefined while there is none. */
  #token: string | undefined;
  /** The session whose prelude was sent and not yet acknowledged. */
  #pendingToken: string | undefined;
  #readyProblem: string | undefined;
  /** A banner was seen that no prelude has answered yet. */
  #hasFreshBanner = false;
  /** When the last shell died, while no new one has been taken over. */
  #diedAt: number | undefined;
  /** Settles once the console's connection has closed (never rejects). */
  readonly connectionClosed: Promise<void>;

  private constructor(streams: ShellStreams, isRunning: boolean) {
    this.#input = streams.console;
    this.#hasFreshBanner = isRunning;
    this.#stdout = new ChunkReader("backdoor shell's stdout port", streams.stdout);
    this.#stderr = new ChunkReader("backdoor shell's stderr port", streams.stderr);
    streams.console.on("data", (chunk: Buffer) => {
      for (const event of this.#events.push(chunk)) this.#onEvent(event);
    });
    const { promise: connectionClosed, resolve: closed } = Promise.withResolvers<void>();
    this.connectionClosed = connectionClosed;
    const onEnd = (error?: Error) => {
      this.#breakFor(
        new CorralError(ErrorCodes.GUEST_CHANNEL_BROKEN, "the backdoor shell connection closed", {
          ...(error ? { cause: error } : {}),
        }),
      );
      closed();
    };
    streams.console.on("close", () => onEnd());
    streams.console.on("end", () => onEnd());
    streams.console.on("error", (error) => onEnd(error));
  }

  /** Waits for the backdoor banner, then installs the prelude. */
  static async connect(
    streams: ShellStreams,
    deadline: Deadline,
    describe: () => string[],
  ): Promise<BackdoorShell> {
    const shell = new BackdoorShell(streams, false);
    await shell.ready(deadline, describe);
    return shell;
  }

  /** Installs the prelude unless the shell runs one already (after its banner, when one comes). */
  ready(deadline: Deadline, describe: () => string[]): Promise<void> {
    return this.exclusive(deadline, describe, () => this.#ensureShell(deadline, describe));
  }

  /**
   * Takes over a shell that is already running and idle, as in a VM restored from a snapshot of
   * a machine whose shell was connected: no banner comes. Given the shell's `session` (its
   * prelude's token, which a snapshot records) it is used as it is; otherwise the first call
   * sends the prelude again.
   */
  static attach(streams: ShellStreams, session?: string): BackdoorShell {
    const shell = new BackdoorShell(streams, session === undefined);
    shell.#token = session;
    return shell;
  }

  /** The token of the prelude the shell runs with, once it has one. */
  get session(): string | undefined {
    return this.#token;
  }

  /** Runs `fn` when no command is running, holding back the calls queued after it. */
  exclusive<T>(deadline: Deadline, describe: () => string[], fn: () => Promise<T>): Promise<T> {
    const limit: ReadLimit = {
      signal: deadline.signal,
      error: () => {
        const holder = this.#lock.holder;
        return deadline.error([
          ...(holder ? [`It was still waiting for an earlier call to end: ${holder}`] : []),
          ...describe(),
        ]);
      },
    };
    return this.#lock.run(deadline.what, limit, fn);
  }

  /** Marks the shell unusable for good (the guest is going down). */
  invalidate(reason: string): void {
    this.#broken ??= new CorralError(ErrorCodes.GUEST_CHANNEL_BROKEN, reason);
  }

  /**
   * Sends a command that ends the shell (poweroff, reboot) after the commands queued before it,
   * without waiting for a reply; the shell is unusable afterwards.
   */
  sendFinal(command: string, deadline: Deadline, describe: () => string[]): Promise<void> {
    return this.exclusive(deadline, describe, async () => {
      if (this.#broken) throw this.#broken;
      await this.#ensureShell(deadline, describe);
      this.#input.write(commandLine(newNonce(), command));
      this.invalidate(`the guest is running ${command}`);
    });
  }

  /**
   * Sends `command` and resolves once it is sent, without waiting for it: for commands that end
   * or replace the shell. The next call first waits until it has ended (its output dropped), or,
   * when it took the shell with it, for the new shell the guest starts, as after a reboot.
   */
  fire(command: string, deadline: Deadline, describe: () => string[]): Promise<void> {
    return this.exclusive(deadline, describe, async () => {
      if (this.#broken) throw this.#broken;
      await this.#afterUnfinished(deadline, describe);
      await this.#ensureShell(deadline, describe);
      const reply = new Reply(newNonce(), deadline.what, describe, {
        maxBuffer: DEFAULT_MAX_BUFFER,
      });
      this.#replies.set(reply.nonce, reply);
      this.#input.write(commandLine(reply.nonce, command));
      reply.drop();
      this.#unfinished = reply;
    });
  }

  /**
   * Runs `command` with bash in the guest; resolves with its exit code, stdout and stderr. When
   * the deadline ends a call before the command does, the command goes on in the guest; the
   * next call first waits (within its own deadline) until that command has finished, dropping
   * its output, so the channel stays in step. Fails with CORRAL_GUEST_CHANNEL_BROKEN at once
   * when the shell dies meanwhile.
   */
  exec(
    command: string,
    deadline: Deadline,
    describe: () => string[],
    options: ExecOptions = {},
  ): Promise<ShellReply> {
    return this.exclusive(deadline, describe, async (): Promise<ShellReply> => {
      if (this.#broken) throw this.#broken;
      const limit = deadlineLimit(deadline, describe);
      await this.#afterUnfinished(deadline, describe);
      await this.#ensureShell(deadline, describe);
      if (limit.signal.aborted) throw limit.error();
      const guestLimitMs =
        options.guestDeadline === "kill" && deadline.remainingMs <= MAX_GUEST_LIMIT_MS
          ? deadline.remainingMs
          : undefined;
      const reply = new Reply(newNonce(), deadline.what, describe, {
        ...options,
        maxBuffer: options.maxBuffer ?? DEFAULT_MAX_BUFFER,
      });
      this.#replies.set(reply.nonce, reply);
      const { control } = options;
      if (control) this.#watchers.set(control.nonce, control.onStatus);
      try {
        this.#input.write(
          commandLine(reply.nonce, command, {
            ...(options.inShell ? { inShell: true } : {}),
            ...(options.leadingLine !== undefined ? { leadingLine: options.leadingLine } : {}),
            ...(guestLimitMs !== undefined ? { limitMs: guestLimitMs } : {}),
          }),
        );
        control?.onSent();
        const status = await this.#finish(
          reply,
          options.guestDeadline ? withReportMargin(deadline, describe, options) : limit,
        );
        return reply.result(status);
      } finally {
        if (control) this.#watchers.delete(control.nonce);
      }
    });
  }

  /** Waits until the command that overran its caller's deadline (or was fired) has ended. */
  async #afterUnfinished(deadline: Deadline, describe: () => string[]): Promise<void> {
    const earlier = this.#unfinished;
    if (!earlier) return;
    await this.#finish(earlier, {
      signal: deadline.signal,
      error: () =>
        deadline.error([
          `It was still waiting for an earlier command that overran its caller's deadline to end: ${earlier.what}`,
          ...describe(),
        ]),
    }).catch((error: unknown) => {
      // A shell that died took that command with it; the next one is taken over after this.
      if (earlier.failure !== error) throw error;
    });
  }

  /** Reads the rest of `reply` from the three streams; remembers it when `limit` fires first. */
  async #finish(reply: Reply, limit: ReadLimit): Promise<ReplyStatus> {
    const stop = new AbortController();
    const signal = AbortSignal.any([limit.signal, reply.signal, stop.signal]);
    const readLimit: ReadLimit = {
      signal,
      error: () => reply.failure ?? (stop.signal.aborted ? stop.signal.reason : limit.error()),
    };
    const pending: Promise<unknown>[] = [reply.waitStatus(readLimit)];
    for (const [reader, splitter, key] of [
      [this.#stdout, reply.stdoutSplitter, "isStdoutDone"],
      [this.#stderr, reply.stderrSplitter, "isStderrDone"],
    ] as const) {
      if (reply[key]) continue;
      pending.push(
        reader
          .read(readLimit, (chunk) => {
            const rest = splitter.push(chunk);
            return rest ? { value: undefined, rest } : undefined;
          })
          .then(() => {
            reply[key] = true;
          }),
      );
    }
    try {
      await Promise.all(pending);
    } catch (error) {
      // The first failure ends the other reads too.
      stop.abort(error);
      await Promise.allSettled(pending);
      if (reply.failure === error) throw error;
      if (error instanceof CorralError && error.code === ErrorCodes.GUEST_CHANNEL_BROKEN) {
        this.#breakFor(error);
      } else {
        // The command still runs in the guest: its output is dropped from now on.
        reply.drop();
        this.#unfinished = reply;
      }
      throw error;
    }
    this.#replies.delete(reply.nonce);
    if (this.#unfinished === reply) this.#unfinished = undefined;
    return reply.status as ReplyStatus;
  }

  /**
   * Makes sure a shell with corral's prelude is there: after the first banner, after a snapshot
   * restore (the prelude is sent again), or after the shell died and the guest started a new
   * one. A shell that died is waited for at most RESTART_WAIT_MS after its death.
   */
  async #ensureShell(deadline: Deadline, describe: () => string[]): Promise<void> {
    const limit = deadlineLimit(deadline, describe);
    if (this.#broken) throw this.#broken;
    while (!this.#token) {
      if (!this.#hasFreshBanner) await this.#awaitBanner(deadline, limit, describe);
      this.#hasFreshBanner = false;
      const token = newToken();
      this.#pendingToken = token;
      this.#readyProblem = undefined;
      this.#input.write(`${shellPrelude(token)}\n`);
      const isGone = () => this.#pendingToken !== token;
      await this.#waitUntil(() => this.#readyProblem !== undefined || isGone(), limit);
      if (isGone()) continue;
      if (this.#readyProblem) {
        // That shell stays as it is: no new banner will come.
        this.#breakFor(
          new CorralError(
            ErrorCodes.GUEST_CHANNEL_BROKEN,
            `${deadline.what}: the backdoor shell started but cannot be used: ${this.#readyProblem}`,
            { details: describe() },
          ),
        );
        throw this.#broken;
      }
      const marker = sessionMarker(token);
      await Promise.all(
        [this.#stdout, this.#stderr].map((reader) => {
          const splitter = new MarkerSplitter(marker, () => {});
          return reader.read(limit, (chunk) => {
            const rest = splitter.push(chunk);
            return rest ? { value: undefined, rest } : undefined;
          });
        }),
      );
      if (isGone()) continue;
      this.#pendingToken = undefined;
      this.#token = token;
      this.#diedAt = undefined;
    }
  }

  async #awaitBanner(
    deadline: Deadline,
    limit: ReadLimit,
    describe: () => string[],
  ): Promise<void> {
    const diedAt = this.#diedAt;
    if (diedAt === undefined) return this.#waitUntil(() => this.#hasFreshBanner, limit);
    const gaveUp = () =>
      new CorralError(
        ErrorCodes.GUEST_CHANNEL_BROKEN,
        `${deadline.what}: the backdoor shell died and the guest did not start a new one within ${RESTART_WAIT_MS / 1000} s (the guest's backdoor service does not restart it, or cannot); no command can run any more`,
        { details: describe() },
      );
    const leftMs = diedAt + RESTART_WAIT_MS - performance.now();
    if (leftMs <= 0) throw gaveUp();
    const restartLimit = AbortSignal.timeout(Math.ceil(leftMs));
    await this.#waitUntil(() => this.#hasFreshBanner, {
      signal: AbortSignal.any([limit.signal, restartLimit]),
      error: () =>
        limit.signal.aborted
          ? deadline.error([
              "The backdoor shell had died; the guest had not started a new one yet.",
              ...describe(),
            ])
          : gaveUp(),
    });
  }

  /** Resolves once `condition()` holds; rejects when `limit` fires or the channel breaks. */
  #waitUntil(condition: () => boolean, limit: ReadLimit): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.#broken) finish(() => reject(this.#broken));
        else if (condition()) finish(resolve);
      };
      const onAbort = () => finish(() => reject(limit.error()));
      const finish = (outcome: () => void) => {
        this.#listeners.delete(check);
        limit.signal.removeEventListener("abort", onAbort);
        outcome();
      };
      if (limit.signal.aborted) return onAbort();
      this.#listeners.add(check);
      limit.signal.addEventListener("abort", onAbort, { once: true });
      check();
    });
  }

  #onEvent(event: ConsoleEvent): void {
    switch (event.kind) {
      case "banner":
        // A new shell without word of the old one's death: it died all the same.
        if (this.#token || this.#pendingToken) this.#onDeath();
        this.#hasFreshBanner = true;
        break;
      case "ready":
        if (event.token === this.#pendingToken) this.#readyProblem = event.problem;
        break;
      case "died":
        if (event.token === this.#token || event.token === this.#pendingToken) this.#onDeath();
        break;
      default: {
        const reply = this.#replies.get(event.nonce);
        if (reply) reply.settle(event);
        else this.#watchers.get(event.nonce)?.(event);
      }
    }
    for (const listener of [...this.#listeners]) listener();
  }

  /** The shell died: every reply still expected fails now, and the next call waits for a new one. */
  #onDeath(): void {
    this.#token = undefined;
    this.#pendingToken = undefined;
    this.#diedAt = performance.now();
    for (const reply of this.#replies.values()) {
      reply.fail(
        new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          `${reply.what}: the backdoor shell died while running the command (it was killed, or the guest could not fork); corral takes over a new shell if the guest starts one`,
          { details: reply.describe() },
        ),
      );
    }
    this.#replies.clear();
    this.#unfinished = undefined;
  }

  #breakFor(error: Error): void {
    this.#broken ??= error;
    for (const reply of this.#replies.values()) reply.fail(this.#broken);
    this.#replies.clear();
    this.#unfinished = undefined;
    for (const listener of [...this.#listeners]) listener();
  }
}

function deadlineLimit(deadline: Deadline, describe: () => string[]): ReadLimit {
  return { signal: deadline.signal, error: () => deadline.error(describe()) };
}

/** The deadline, plus the time the guest needs to report that it kept it. */
function withReportMargin(
  deadline: Deadline,
  describe: () => string[],
  options: ExecOptions,
): ReadLimit {
  const graceMs = options.guestDeadline === "kill" ? KILL_GRACE_SECONDS * 1000 : 0;
  const waitMs = Math.min(MAX_GUEST_LIMIT_MS, deadline.remainingMs + graceMs + REPORT_MARGIN_MS);
  const timer = AbortSignal.timeout(Math.ceil(waitMs));
  return {
    signal: options.signal ? AbortSignal.any([options.signal, timer]) : timer,
    error: () => deadline.error(describe()),
  };
}
