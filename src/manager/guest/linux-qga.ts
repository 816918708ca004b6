// GuestOps over the QEMU guest agent of a Linux guest: commands through guest-exec (output only
// after exit, 16 MiB per stream; cwd and env added by /bin/sh, timeouts kept by timeout(1) in
// the guest), files through guest-file-* with sha256 checked in the guest, OS, host name,
// interfaces, filesystems and users from the agent's own commands. No streaming, no pty, no
// stdin but what is given up front, no signals to a running command: declared, not faked.

import { performance } from "node:perf_hooks";
import type { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { QgaClient } from "../../guest/qga-client.ts";
import { posixExecRequest } from "../../guest/qga-posix.ts";
import { QgaError } from "../../guest/qga-protocol.ts";
import { shellQuote } from "../../guest/shell-quote.ts";
import { checkExecRequest, EXIT_TIMED_OUT, linuxArgv } from "./exec-request.ts";
import { checkWriteOptions, HashingSource, uploadName, type WriteOptions } from "./file-uploads.ts";
import type {
  ExecOutcome,
  ExecRequest,
  ExecStreamHandlers,
  GuestCapabilities,
  RunningExec,
  SystemInfo,
} from "./guest-ops.ts";
import { macOrNull, parseSystemInfo, systemInfoScript } from "./linux-info.ts";
import { LinuxGuestOps, type ScriptResult } from "./linux-ops.ts";
import { parseStat, statScript, validateLinuxPath } from "./linux-scripts.ts";

/** What the agent keeps of each of stdout and stderr (qga/commands.c GUEST_EXEC_MAX_OUTPUT). */
export const QGA_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/** How long timeout(1) waits after SIGTERM before SIGKILL, in seconds. */
const KILL_AFTER_S = 2;
/** The statuses timeout(1) ends with when it ended the program: TERM worked, or KILL was needed. */
const TIMEOUT_STATUSES = [124, 137];

/** Throws CORRAL_UNSUPPORTED for what qemu-ga cannot do, naming the channel. */
export function unsupportedOnQga(what: string): CorralError {
  return new CorralError(
    ErrorCodes.UNSUPPORTED,
    `${what}: the guest is reached through qemu-ga, which gives a command's output only after it has ended and takes stdin only up front: no streaming, pty or signals to a running command (use exec)`,
  );
}

export class LinuxQgaOps extends LinuxGuestOps {
  readonly capabilities: GuestCapabilities = {
    channel: "qga",
    os: "linux",
    streaming: false,
    interactiveStdin: false,
    pty: false,
    signals: false,
    maxOutputBytes: QGA_MAX_OUTPUT_BYTES,
  };
  readonly #client: QgaClient;

  constructor(client: QgaClient) {
    super();
    this.#client = client;
  }

  async ping(deadline: Deadline): Promise<void> {
    await this.#client.ping(deadline);
  }

  async exec(request: ExecRequest, deadline: Deadline): Promise<ExecOutcome> {
    checkExecRequest(request, validateLinuxPath);
    const { timeoutMs } = request;
    const isOwnLimit = timeoutMs !== undefined && timeoutMs < deadline.remainingMs;
    const argv = isOwnLimit
      ? [
          "timeout",
          "-k",
          String(KILL_AFTER_S),
          (timeoutMs / 1000).toFixed(3),
          ...linuxArgv(request),
        ]
      : linuxArgv(request);
    const started = performance.now();
    const result = await this.#client.exec(
      posixExecRequest({
        argv,
        ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
        ...(request.env ? { env: request.env } : {}),
        ...(request.stdin ? { input: request.stdin } : {}),
      }),
      deadline,
      // Without a limit of its own, the command must not outlive the caller's deadline.
      { killAtDeadline: !isOwnLimit },
    );
    // A status of timeout(1)'s own, once the limit has passed (the guest's clock started later).
    const isTimedOut =
      isOwnLimit &&
      TIMEOUT_STATUSES.includes(result.exitCode) &&
      performance.now() - started >= timeoutMs;
    return {
      exitCode: isTimedOut ? EXIT_TIMED_OUT : result.exitCode,
      stdout: result.stdout,
      stderr: result.stderr,
      isTimedOut,
      isStdoutTruncated: result.stdoutTruncated,
      isStderrTruncated: result.stderrTruncated,
    };
  }

  async execStream(
    _request: ExecRequest,
    _handlers: ExecStreamHandlers,
    _deadline: Deadline,
  ): Promise<RunningExec> {
    throw unsupportedOnQga("streaming exec");
  }

  readFile(path: string, deadline: Deadline): AsyncIterable<Buffer> {
    const ops = this;
    return (async function* () {
      validateLinuxPath(path);
      const script = statScript(path, { sha256: true, follow: true });
      const stat = parseStat(
        path,
        (await ops.script(`read file ${path}`, script, deadline, path)).stdout,
      );
      if (stat.type !== "file") {
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          `read file ${path}: it is a ${stat.type}, not a regular file`,
        );
      }
      const received = new HashingSource(ops.#client.readFileChunks(path, deadline));
      yield* received.chunks as AsyncIterable<Buffer>;
      if (received.sha256 !== stat.sha256) {
        throw new CorralError(
          ErrorCodes.GUEST_CHANNEL_BROKEN,
          `read file ${path}: the bytes read have sha256 ${received.sha256}, the guest's file had ${stat.sha256}: it changed while it was read`,
        );
      }
    })();
  }

  async writeFile(
    path: string,
    data: AsyncIterable<Uint8Array>,
    options: WriteOptions,
    deadline: Deadline,
  ): Promise<{ sizeBytes: number; sha256: string }> {
    validateLinuxPath(path);
    checkWriteOptions(options);
    const temporary = uploadName(path);
    const source = new HashingSource(data);
    try {
      await this.#client.writeFile(temporary, source.chunks, deadline).catch(async (error) => {
        // guest-file-open cannot make the folder: make it, then write (the data is untouched).
        if (!(error instanceof QgaError) || !error.description.includes("No such file"))
          throw error;
        const folder = temporary.slice(0, temporary.lastIndexOf("/")) || "/";
        await this.script(`write file ${path}`, `mkdir -p -- ${shellQuote(folder)}`, deadline);
        await this.#client.writeFile(temporary, source.chunks, deadline);
      });
      return await this.commitUpload(path, temporary, source, options, deadline);
    } catch (error) {
      await this.runScript(`rm -f -- ${shellQuote(temporary)}`, deadline).catch(() => undefined);
      throw error;
    }
  }

  async systemInfo(deadline: Deadline): Promise<SystemInfo> {
    const client = this.#client;
    const facts = parseSystemInfo(
      (await this.script("system info", systemInfoScript(false), deadline)).stdout,
    );
    const os = await client.osInfo(deadline);
    const hostname = await client.hostName(deadline);
    const interfaces = await client.networkInterfaces(deadline);
    const filesystems = await client.fsInfo(deadline);
    const users = await client.users(deadline);
    return {
      ...facts,
      os: {
        family: "linux",
        name: os.name ?? facts.os.name,
        version: os.versionId ?? os.version ?? facts.os.version,
        kernel: os.kernelRelease ?? facts.os.kernel,
      },
      hostname,
      interfaces: interfaces.map((nic) => ({
        name: nic.name,
        mac: macOrNull(nic.hardwareAddress),
        addresses: (nic.ipAddresses ?? []).map((ip) => `${ip.ipAddress}/${ip.prefix}`),
      })),
      filesystems: filesystems.map((fs) => ({
        mountpoint: fs.mountpoint,
        type: fs.type,
        totalBytes: fs.totalBytes ?? 0,
        usedBytes: fs.usedBytes ?? 0,
      })),
      users: [...new Set(users.map((user) => user.user))],
    };
  }

  /**
   * qemu-ga runs shutdown(8) and waits for it; when systemd ends that child as the guest goes
   * down, the agent reports "child process has terminated abnormally": the shutdown is under
   * way, not refused.
   */
  async shutdown(mode: "powerdown" | "reboot", deadline: Deadline): Promise<void> {
    await this.#client.shutdown(mode, deadline).catch((error: unknown) => {
      if (error instanceof QgaError && error.description.includes("terminated abnormally")) return;
      throw error;
    });
  }

  protected async runScript(script: string, deadline: Deadline): Promise<ScriptResult> {
    const result = await this.#client.exec({ path: "/bin/bash", args: ["-c", script] }, deadline, {
      killAtDeadline: true,
    });
    return {
      exitCode: result.exitCode,
      stdout: result.stdout.toString(),
      stderr: result.stderr.toString(),
    };
  }
}
