// The guest operations the manager offers on a VM, whatever channel reaches the guest (the
// backdoor shell, or the QEMU guest agent on Linux or Windows). A channel that lacks something
// (streaming, stdin, a pty) says so in `capabilities`; calling it anyway throws
// CORRAL_UNSUPPORTED naming the channel — nothing is faked.

import type { Deadline } from "../../deadline.ts";

export type GuestChannelKind = "backdoor" | "qga";

export interface GuestCapabilities {
  channel: GuestChannelKind;
  os: "linux" | "windows";
  /** Output as it comes (WebSocket exec); qemu-ga gives output only after exit. */
  streaming: boolean;
  /** Standard input while the command runs (qemu-ga: only bytes given up front). */
  interactiveStdin: boolean;
  /** A pseudo-terminal for the command (`tty: true`). */
  pty: boolean;
  /** Signals to a running command. */
  signals: boolean;
  /** The most bytes of each of stdout and stderr a one-shot exec returns. */
  maxOutputBytes: number;
}

export interface ExecRequest {
  /** Run by the guest's shell (bash on Linux, PowerShell on Windows); exactly one of command, argv. */
  command?: string;
  argv?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Run as this user (Linux: via runuser/su; refused on channels that cannot). */
  user?: string;
  timeoutMs?: number;
  stdin?: Uint8Array;
}

export interface ExecOutcome {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  /** The command ran past timeoutMs and was killed in the guest. */
  isTimedOut: boolean;
  /** The channel kept only the first maxOutputBytes of a stream. */
  isStdoutTruncated: boolean;
  isStderrTruncated: boolean;
}

/** Callbacks of a streaming exec; write/close/signal/resize drive the running command. */
export interface ExecStreamHandlers {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
}

export interface RunningExec {
  writeStdin(chunk: Buffer): void;
  closeStdin(): void;
  signal(name: string): void;
  resize(columns: number, rows: number): void;
  /**
   * Settles with the exit code once the command has ended; `isTimedOut` when its timeoutMs
   * passed and it was killed (exit code 124 then).
   */
  readonly exited: Promise<{ exitCode: number; isTimedOut?: boolean }>;
}

export interface FileStat {
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  sizeBytes: number;
  mode: number;
  uid: number;
  gid: number;
  modifiedAt: string;
  /** Windows: the FileAttributes (`Archive`, `ReadOnly, Hidden`); mode, uid and gid are 0 there. */
  attributes?: string;
}

export interface SystemInfo {
  os: { family: "linux" | "windows"; name: string; version: string; kernel: string };
  hostname: string;
  cpus: number;
  memory: { totalBytes: number; availableBytes: number };
  filesystems: { mountpoint: string; type: string; totalBytes: number; usedBytes: number }[];
  interfaces: { name: string; mac: string | null; addresses: string[] }[];
  uptimeS: number;
  users: string[];
}

export interface GuestProcess {
  pid: number;
  user: string;
  command: string;
  cpuPercent: number;
  rssBytes: number;
}

export interface GuestService {
  name: string;
  description: string;
  /** Linux: active/inactive/failed…; Windows: Running/Stopped… */
  state: string;
  /** Linux: enabled/disabled/static…; Windows: Automatic/Manual/Disabled. */
  startup: string;
}

export interface LogQuery {
  since?: Date;
  /** Linux: a systemd unit (`journalctl -u`); Windows: an event log (default System and Application). */
  unit?: string;
  /** 0 (emerg) – 7 (debug), the syslog scale; Windows levels map onto it. */
  priority?: number;
  /** The most entries, the newest (default 100, at most 10,000). */
  limit?: number;
  /** Linux: the syslog identifier (`logger -t`); Windows: the event's provider (source). */
  identifier?: string;
}

export interface LogEntry {
  time: string;
  priority: number;
  source: string;
  message: string;
  /** Windows: the event log's name and id. */
  logName?: string;
  eventId?: number;
  /** Linux: the systemd unit that logged it. */
  unit?: string;
}

export interface GuestHealth {
  agentRoundTripMs: number;
  /** systemd's is-system-running (running, degraded…), or Windows' equivalent. */
  systemState: string;
  load1: number | null;
  memoryAvailableBytes: number;
  diskFreeBytes: number;
}

/** One VM's guest, through the channel chosen for it. */
export interface GuestOps {
  readonly capabilities: GuestCapabilities;
  ping(deadline: Deadline): Promise<void>;
  exec(request: ExecRequest, deadline: Deadline): Promise<ExecOutcome>;
  /** Throws CORRAL_UNSUPPORTED when the channel cannot stream (capabilities.streaming). */
  execStream(
    request: ExecRequest & { tty?: boolean; columns?: number; rows?: number },
    handlers: ExecStreamHandlers,
    deadline: Deadline,
  ): Promise<RunningExec>;
  stat(path: string, deadline: Deadline): Promise<FileStat>;
  readFile(path: string, deadline: Deadline): AsyncIterable<Buffer>;
  /** Writes to a temporary name and renames into place once `sha256` (when given) matches. */
  writeFile(
    path: string,
    data: AsyncIterable<Uint8Array>,
    options: { mode?: number; uid?: number; gid?: number; sha256?: string },
    deadline: Deadline,
  ): Promise<{ sizeBytes: number; sha256: string }>;
  remove(path: string, options: { recursive?: boolean }, deadline: Deadline): Promise<void>;
  systemInfo(deadline: Deadline): Promise<SystemInfo>;
  processes(deadline: Deadline): Promise<GuestProcess[]>;
  kill(pid: number, signal: string, deadline: Deadline): Promise<void>;
  health(deadline: Deadline): Promise<GuestHealth>;
  shutdown(mode: "powerdown" | "reboot", deadline: Deadline): Promise<void>;
  services(deadline: Deadline): Promise<GuestService[]>;
  serviceAction(
    name: string,
    action: "start" | "stop" | "restart",
    deadline: Deadline,
  ): Promise<GuestService>;
  /** The newest entries that match, oldest first. */
  logs(query: LogQuery, deadline: Deadline): Promise<LogEntry[]>;
}
