// GuestOps over the QEMU guest agent of a Windows guest: every operation a PowerShell script
// (src/guest/windows builds them and reads their JSON), files through guest-file-* with the
// sha256 checked by Get-FileHash before the rename, interfaces and users from the agent itself.
// A timeout ends the command's process tree with taskkill, as qemu-ga has no kill. Not
// verified on a real Windows guest.

import { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { QgaClient } from "../../guest/qga-client.ts";
import type { QgaExecRequest } from "../../guest/qga-exec.ts";
import { QgaError } from "../../guest/qga-protocol.ts";
import {
  EVENT_LEVELS,
  type EventLevel,
  eventLogScript,
  parseEventLog,
} from "../../guest/windows/event-logs.ts";
import {
  makeDirectoryScript,
  moveFileScript,
  parseFileStat,
  removeScript,
  statScript,
  validateWindowsPath,
} from "../../guest/windows/files.ts";
import {
  type PowerShellExecArguments,
  powershellExec,
  psQuote,
} from "../../guest/windows/powershell.ts";
import {
  checkPowerShellResult,
  type PowerShellResult,
} from "../../guest/windows/powershell-output.ts";
import {
  killProcessScript,
  listProcessesScript,
  parseProcesses,
} from "../../guest/windows/processes.ts";
import { runCommandExec } from "../../guest/windows/run-command.ts";
import {
  listServicesScript,
  parseServices,
  serviceActionScript,
  type WindowsService,
} from "../../guest/windows/services.ts";
import { parseSystemInfo, systemInfoScript } from "../../guest/windows/system-info.ts";
import { checkExecRequest, EXIT_TIMED_OUT } from "./exec-request.ts";
import {
  checkWriteOptions,
  EXIT_SHA256_MISMATCH,
  HashingSource,
  requireSha256,
  uploadName,
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
import { macOrNull } from "./linux-info.ts";
import { QGA_MAX_OUTPUT_BYTES, unsupportedOnQga } from "./linux-qga.ts";
import { checkLogQuery } from "./linux-scripts.ts";

/** Windows event levels on the syslog scale (LogQuery.priority, LogEntry.priority). */
export const LEVEL_PRIORITY: Readonly<Record<EventLevel, number>> = {
  Critical: 2,
  Error: 3,
  Warning: 4,
  Information: 6,
  Verbose: 7,
};
/** How long the kill of a timed-out command may take, in ms. */
const KILL_TIMEOUT_MS = 30_000;

export class WindowsQgaOps implements GuestOps {
  readonly capabilities: GuestCapabilities = {
    channel: "qga",
    os: "windows",
    streaming: false,
    interactiveStdin: false,
    pty: false,
    signals: false,
    maxOutputBytes: QGA_MAX_OUTPUT_BYTES,
  };
  readonly #client: QgaClient;

  constructor(client: QgaClient) {
    this.#client = client;
  }

  async ping(deadline: Deadline): Promise<void> {
    await this.#client.ping(deadline);
  }

  async exec(request: ExecRequest, deadline: Deadline): Promise<ExecOutcome> {
    checkExecRequest(request, validateWindowsPath);
    if (request.user !== undefined) {
      throw new CorralError(
        ErrorCodes.UNSUPPORTED,
        "exec as another user: qemu-ga runs commands on Windows as LocalSystem only",
      );
    }
    const command = {
      ...(request.argv ? { argv: request.argv } : { script: request.command ?? "" }),
      ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
      ...(request.env ? { env: request.env } : {}),
    };
    const { timeoutMs } = request;
    let pid: number | undefined;
    let isTimedOut = false;
    const timer =
      timeoutMs !== undefined && timeoutMs < deadline.remainingMs
        ? setTimeout(() => {
            isTimedOut = true;
            if (pid !== undefined) void this.#killTree(pid, deadline);
          }, timeoutMs)
        : undefined;
    try {
      const result = await this.#client.exec(
        {
          ...qgaRequest(runCommandExec(command)),
          ...(request.stdin ? { input: request.stdin } : {}),
        },
        deadline,
        {
          onStarted: (started) => {
            pid = started;
            if (isTimedOut) void this.#killTree(started, deadline);
          },
        },
      );
      return {
        exitCode: isTimedOut ? EXIT_TIMED_OUT : result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        isTimedOut,
        isStdoutTruncated: result.stdoutTruncated,
        isStderrTruncated: result.stderrTruncated,
      };
    } catch (error) {
      // The caller's deadline passed first: the command must not run on unseen.
      if (pid !== undefined && deadline.signal.aborted) void this.#killTree(pid, deadline);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async execStream(
    _request: ExecRequest,
    _handlers: ExecStreamHandlers,
    _deadline: Deadline,
  ): Promise<RunningExec> {
    throw unsupportedOnQga("streaming exec");
  }

  async stat(path: string, deadline: Deadline): Promise<FileStat> {
    const stat = parseFileStat(await this.#run(`stat ${path}`, statScript(path), deadline));
    return {
      path,
      type: stat.isDirectory ? "directory" : "file",
      sizeBytes: stat.sizeBytes,
      mode: 0,
      uid: 0,
      gid: 0,
      modifiedAt: stat.mtime ?? new Date(0).toISOString(),
      attributes: stat.attributes,
    };
  }

  readFile(path: string, deadline: Deadline): AsyncIterable<Buffer> {
    const ops = this;
    return (async function* () {
      const stat = await ops.stat(path, deadline);
      if (stat.type !== "file") {
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          `read file ${path}: it is a folder, not a file`,
        );
      }
      yield* ops.#client.readFileChunks(path, deadline);
    })();
  }

  async writeFile(
    path: string,
    data: AsyncIterable<Uint8Array>,
    options: WriteOptions,
    deadline: Deadline,
  ): Promise<{ sizeBytes: number; sha256: string }> {
    validateWindowsPath(path);
    checkWriteOptions(options);
    if (options.mode !== undefined || options.uid !== undefined || options.gid !== undefined) {
      throw new CorralError(
        ErrorCodes.UNSUPPORTED,
        `write file ${path}: Windows files have no POSIX mode or owner (mode, uid, gid)`,
      );
    }
    const temporary = uploadName(path, true);
    const source = new HashingSource(data);
    try {
      await this.#client.writeFile(temporary, source.chunks, deadline).catch(async (error) => {
        // guest-file-open cannot make the folder: make it, then write (the data is untouched).
        if (!(error instanceof QgaError)) throw error;
        const folder = temporary.slice(
          0,
          Math.max(temporary.lastIndexOf("\\"), temporary.lastIndexOf("/")),
        );
        await this.#run(`write file ${path}`, makeDirectoryScript(folder), deadline);
        await this.#client.writeFile(temporary, source.chunks, deadline);
      });
      requireSha256(path, source.sha256, options.sha256);
      const result = await this.#powershell(
        commitUploadScript(temporary, path, source.sha256),
        deadline,
      );
      if (result.exitCode === EXIT_SHA256_MISMATCH) {
        throw new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          `write file ${path}: the bytes that landed in the guest have sha256 ${result.stdout.trim()}, not those sent; nothing was written`,
        );
      }
      checkPowerShellResult(`write file ${path}`, result);
      return { sizeBytes: source.sizeBytes, sha256: source.sha256 };
    } catch (error) {
      await this.#powershell(removeScript(temporary), deadline).catch(() => undefined);
      throw error;
    }
  }

  async remove(path: string, options: { recursive?: boolean }, deadline: Deadline): Promise<void> {
    await this.#run(`remove ${path}`, removeScript(path, options), deadline);
  }

  async systemInfo(deadline: Deadline): Promise<SystemInfo> {
    const info = parseSystemInfo(await this.#run("system info", systemInfoScript(), deadline));
    const interfaces = await this.#client.networkInterfaces(deadline);
    const users = await this.#client.users(deadline);
    return {
      os: { family: "windows", name: info.osName, version: info.osVersion, kernel: info.osBuild },
      hostname: info.hostname,
      cpus: info.cpus,
      memory: { totalBytes: info.memoryTotalBytes, availableBytes: info.memoryFreeBytes },
      filesystems: info.disks
        .filter((disk) => disk.sizeBytes !== null)
        .map((disk) => ({
          mountpoint: disk.device,
          type: disk.fileSystem ?? "",
          totalBytes: disk.sizeBytes ?? 0,
          usedBytes: (disk.sizeBytes ?? 0) - (disk.freeBytes ?? 0),
        })),
      interfaces: interfaces.map((nic) => ({
        name: nic.name,
        mac: macOrNull(nic.hardwareAddress),
        addresses: (nic.ipAddresses ?? []).map((ip) => `${ip.ipAddress}/${ip.prefix}`),
      })),
      uptimeS: info.uptimeS,
      users: [
        ...new Set(users.map((user) => (user.domain ? `${user.domain}\\${user.user}` : user.user))),
      ],
    };
  }

  async processes(deadline: Deadline): Promise<GuestProcess[]> {
    return parseProcesses(await this.#run("processes", listProcessesScript(), deadline)).map(
      (process) => ({
        pid: process.pid,
        user: process.user ?? "",
        command: process.path ?? process.name,
        cpuPercent: process.cpuPercent ?? 0,
        rssBytes: process.workingSetBytes,
      }),
    );
  }

  async kill(pid: number, signal: string, deadline: Deadline): Promise<void> {
    await this.#run(`kill ${pid}`, killProcessScript(pid, signal), deadline);
  }

  /**
   * Windows has no is-system-running: `systemState` is "running" whenever the agent answers;
   * no load average (null); memory and the system drive's free space from CIM.
   */
  async health(deadline: Deadline): Promise<GuestHealth> {
    const started = performance.now();
    await this.ping(deadline);
    const agentRoundTripMs = performance.now() - started;
    const info = parseSystemInfo(await this.#run("health", systemInfoScript(), deadline));
    const system = info.disks.find((disk) => disk.device.toUpperCase() === "C:") ?? info.disks[0];
    return {
      agentRoundTripMs,
      systemState: "running",
      load1: null,
      memoryAvailableBytes: info.memoryFreeBytes,
      diskFreeBytes: system?.freeBytes ?? 0,
    };
  }

  async shutdown(mode: "powerdown" | "reboot", deadline: Deadline): Promise<void> {
    await this.#client.shutdown(mode, deadline);
  }

  async services(deadline: Deadline): Promise<GuestService[]> {
    return parseServices(await this.#run("services", listServicesScript(), deadline)).map(
      serviceView,
    );
  }

  async serviceAction(
    name: string,
    action: "start" | "stop" | "restart",
    deadline: Deadline,
  ): Promise<GuestService> {
    const operation = `${action} service ${JSON.stringify(name)}`;
    const [service] = parseServices(
      await this.#run(operation, serviceActionScript(name, action), deadline),
    );
    if (!service) throw new CorralError(ErrorCodes.NOT_FOUND, `${operation}: no such service`);
    return serviceView(service);
  }

  async logs(query: LogQuery, deadline: Deadline): Promise<LogEntry[]> {
    // Log names and providers have spaces; eventLogScript quotes them.
    const limit = checkLogQuery({ ...query, unit: undefined, identifier: undefined });
    const { priority } = query;
    const script = eventLogScript({
      ...(query.unit !== undefined ? { logNames: [query.unit] } : {}),
      ...(query.since ? { since: query.since } : {}),
      ...(priority !== undefined
        ? { levels: EVENT_LEVELS.filter((level) => LEVEL_PRIORITY[level] <= Math.max(priority, 2)) }
        : {}),
      ...(query.identifier !== undefined ? { provider: query.identifier } : {}),
      maxEvents: limit,
    });
    return parseEventLog(await this.#run("logs", script, deadline))
      .map((event) => ({
        time: event.time ?? new Date(0).toISOString(),
        priority: LEVEL_PRIORITY[event.level],
        source: event.provider,
        message: event.message ?? "",
        logName: event.logName,
        eventId: event.id,
      }))
      .reverse();
  }

  /** Runs a script that must succeed (checkPowerShellResult); its stdout. */
  async #run(operation: string, script: string, deadline: Deadline): Promise<string> {
    const result = await this.#powershell(script, deadline);
    checkPowerShellResult(operation, result);
    return result.stdout;
  }

  async #powershell(script: string, deadline: Deadline): Promise<PowerShellResult> {
    const result = await this.#client.exec(qgaRequest(powershellExec(script)), deadline);
    return {
      exitCode: result.exitCode,
      stdout: result.stdout.toString("utf8"),
      stderr: result.stderr.toString("utf8"),
    };
  }

  /** Ends process `pid` and its children (taskkill /T /F): a command past its timeout. */
  async #killTree(pid: number, deadline: Deadline): Promise<void> {
    const killing = new Deadline(`${deadline.what}: taskkill ${pid}`, {}, KILL_TIMEOUT_MS);
    await this.#client
      .exec({ path: "taskkill.exe", args: ["/PID", String(pid), "/T", "/F"] }, killing)
      .catch(() => undefined);
  }
}

/** guest-exec arguments as a QgaClient request. */
function qgaRequest(args: PowerShellExecArguments): QgaExecRequest {
  return { path: args.path, args: args.arg };
}

function serviceView(service: WindowsService): GuestService {
  return {
    name: service.name,
    description: service.displayName,
    state: service.status,
    startup: service.startType,
  };
}

/**
 * Puts the upload `temporary` in place at `path` once its SHA-256 is `sha256`; removes it and
 * exits with EXIT_SHA256_MISMATCH (printing the hash found) otherwise.
 */
export function commitUploadScript(temporary: string, path: string, sha256: string): string {
  return [
    `$hash = (Get-FileHash -LiteralPath ${psQuote(temporary)} -Algorithm SHA256).Hash.ToLowerInvariant()`,
    `if ($hash -ne ${psQuote(sha256)}) { Remove-Item -LiteralPath ${psQuote(temporary)} -Force; [Console]::Out.WriteLine($hash); exit ${EXIT_SHA256_MISMATCH} }`,
    moveFileScript(temporary, path),
  ].join("\n");
}
