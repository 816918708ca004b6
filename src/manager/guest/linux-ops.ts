// What both Linux channels do the same way: corral's own bash scripts (linux-scripts.ts) for
// stat, remove, processes, kill, services, logs and health, read back the same way. A channel
// says how it runs a script, and brings exec, files, system info and shutdown of its own.

import type { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes, GuestCommandError } from "../../errors.ts";
import { signalName } from "../../guest/interactive-exec.ts";
import {
  commitFailure,
  commitUploadScript,
  EXIT_SHA256_MISMATCH,
  type HashingSource,
  requireSha256,
  type WriteOptions,
} from "./file-uploads.ts";
import type {
  ExecOutcome,
  ExecRequest,
  ExecStreamHandlers,
  FileStat,
  GuestCapabilities,
  GuestHealth,
  GuestOps,
  GuestProcess,
  GuestService,
  LogEntry,
  LogQuery,
  RunningExec,
  SystemInfo,
} from "./guest-ops.ts";
import {
  EXIT_NOT_EMPTY,
  EXIT_NOT_FOUND,
  HEALTH_SCRIPT,
  killScript,
  logsScript,
  PROCESSES_SCRIPT,
  parseHealth,
  parseJournal,
  parseProcesses,
  parseServices,
  parseShownService,
  parseStat,
  removeScript,
  SERVICES_SCRIPT,
  serviceActionScript,
  statScript,
  validateLinuxPath,
} from "./linux-scripts.ts";

/** What one of corral's scripts did. */
export interface ScriptResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The status of a script whose program is missing in the guest. */
const EXIT_NO_PROGRAM = 127;

export abstract class LinuxGuestOps implements GuestOps {
  abstract readonly capabilities: GuestCapabilities;
  /** Runs `script` with bash in the guest, killed at the deadline. */
  protected abstract runScript(script: string, deadline: Deadline): Promise<ScriptResult>;
  abstract ping(deadline: Deadline): Promise<void>;
  abstract exec(request: ExecRequest, deadline: Deadline): Promise<ExecOutcome>;
  abstract execStream(
    request: ExecRequest & { tty?: boolean; columns?: number; rows?: number },
    handlers: ExecStreamHandlers,
    deadline: Deadline,
  ): Promise<RunningExec>;
  abstract readFile(path: string, deadline: Deadline): AsyncIterable<Buffer>;
  abstract writeFile(
    path: string,
    data: AsyncIterable<Uint8Array>,
    options: { mode?: number; uid?: number; gid?: number; sha256?: string },
    deadline: Deadline,
  ): Promise<{ sizeBytes: number; sha256: string }>;
  abstract systemInfo(deadline: Deadline): Promise<SystemInfo>;
  abstract shutdown(mode: "powerdown" | "reboot", deadline: Deadline): Promise<void>;

  async stat(path: string, deadline: Deadline): Promise<FileStat> {
    validateLinuxPath(path);
    const result = await this.script(`stat ${path}`, statScript(path), deadline, path);
    return parseStat(path, result.stdout);
  }

  async remove(path: string, options: { recursive?: boolean }, deadline: Deadline): Promise<void> {
    validateLinuxPath(path);
    if (path === "/") {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        "remove: the root folder cannot be removed",
      );
    }
    const script = removeScript(path, options.recursive === true);
    const result = await this.runScript(script, deadline);
    if (result.exitCode === EXIT_NOT_EMPTY) {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `remove ${path}: it is a folder that is not empty; remove it with recursive`,
      );
    }
    this.check(`remove ${path}`, script, result, path);
  }

  async processes(deadline: Deadline): Promise<GuestProcess[]> {
    return parseProcesses((await this.script("processes", PROCESSES_SCRIPT, deadline)).stdout);
  }

  async kill(pid: number, signal: string, deadline: Deadline): Promise<void> {
    if (!Number.isInteger(pid) || pid < 1) {
      throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `kill: ${pid} is not a process id`);
    }
    await this.script(
      `kill ${pid}`,
      killScript(pid, signalName(signal)),
      deadline,
      `process ${pid}`,
    );
  }

  async health(deadline: Deadline): Promise<GuestHealth> {
    const started = performance.now();
    await this.ping(deadline);
    const agentRoundTripMs = performance.now() - started;
    const result = await this.script("health", HEALTH_SCRIPT, deadline);
    return { agentRoundTripMs, ...parseHealth(result.stdout) };
  }

  async services(deadline: Deadline): Promise<GuestService[]> {
    return parseServices((await this.script("services", SERVICES_SCRIPT, deadline)).stdout);
  }

  async serviceAction(
    name: string,
    action: "start" | "stop" | "restart",
    deadline: Deadline,
  ): Promise<GuestService> {
    const script = serviceActionScript(name, action);
    const result = await this.runScript(script, deadline);
    const service = parseShownService(result.stdout);
    if (!service) throw new CorralError(ErrorCodes.NOT_FOUND, `service ${name}: no such unit`);
    this.check(`${action} service ${name}`, script, result);
    return service;
  }

  async logs(query: LogQuery, deadline: Deadline): Promise<LogEntry[]> {
    return parseJournal((await this.script("logs", logsScript(query), deadline)).stdout);
  }

  /**
   * Ends an upload whose bytes are at `temporary` in the guest: checks the sum the client
   * announced, then moves the file into place at `path` once the guest's own sha256 matches:
   * `landedSha256` when the channel hashed the bytes in the guest as they arrived, else the
   * commit script hashes the file. The caller removes `temporary` when this throws.
   */
  protected async commitUpload(
    path: string,
    temporary: string,
    source: HashingSource,
    options: WriteOptions,
    deadline: Deadline,
    landedSha256?: string,
  ): Promise<{ sizeBytes: number; sha256: string }> {
    requireSha256(path, source.sha256, options.sha256);
    if (landedSha256 !== undefined && landedSha256 !== source.sha256) {
      commitFailure(path, { exitCode: EXIT_SHA256_MISMATCH, stdout: landedSha256 });
    }
    const expected = landedSha256 === undefined ? source.sha256 : undefined;
    const script = commitUploadScript(temporary, path, expected, options);
    const result = await this.runScript(script, deadline);
    commitFailure(path, result);
    this.check(`write file ${path}`, script, result);
    return { sizeBytes: source.sizeBytes, sha256: source.sha256 };
  }

  /** Runs a script that must succeed; see check() for what it throws. */
  protected async script(
    operation: string,
    script: string,
    deadline: Deadline,
    missing?: string,
  ): Promise<ScriptResult> {
    const result = await this.runScript(script, deadline);
    this.check(operation, script, result, missing);
    return result;
  }

  /**
   * Throws unless the script succeeded: CORRAL_NOT_FOUND (naming `missing`) for the scripts'
   * own not-found status, CORRAL_UNSUPPORTED when a program it needs is missing, else a
   * GuestCommandError with its output.
   */
  protected check(operation: string, script: string, result: ScriptResult, missing?: string): void {
    if (result.exitCode === 0) return;
    if (result.exitCode === EXIT_NOT_FOUND && missing !== undefined) {
      throw new CorralError(
        ErrorCodes.NOT_FOUND,
        `${operation}: ${missing} does not exist in the guest`,
      );
    }
    if (result.exitCode === EXIT_NO_PROGRAM) {
      throw new CorralError(
        ErrorCodes.UNSUPPORTED,
        `${operation}: the guest lacks a program it needs: ${result.stderr.trim()}`,
      );
    }
    throw new GuestCommandError(
      `${operation} failed in the guest (exit status ${result.exitCode})`,
      { command: script, ...result },
    );
  }
}
