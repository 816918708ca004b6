// A fake guest for tests of the guest routes' HTTP and WebSocket layer without a VM: GuestOps
// over real host processes (bash, in a process group of their own) and a temporary folder that
// stands in for the guest's root (`/etc/x` is `<root>/etc/x`). Services and logs are lists the
// test fills. The real channels are tested against real VMs in test/integration.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, mkdtempSync } from "node:fs";
import { lstat, mkdir, open, rename, rm } from "node:fs/promises";
import { constants, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CorralError, ErrorCodes } from "../../src/errors.ts";
import type {
  ExecOutcome,
  ExecRequest,
  FileStat,
  GuestCapabilities,
  GuestOps,
  GuestService,
  LogEntry,
  RunningExec,
} from "../../src/manager/guest/guest-ops.ts";

export interface FakeGuest extends GuestOps {
  /** The host folder that is the guest's `/`. */
  readonly root: string;
  /** The host path of guest path `path`. */
  hostPath(path: string): string;
  /** Entries logs() answers from (filtered by since, unit and priority). */
  readonly logEntries: LogEntry[];
  /** How many writeFile calls have started (to tell that a refused upload never reached it). */
  writes: number;
  readonly services_: GuestService[];
}

export function fakeGuest(capabilities: Partial<GuestCapabilities> = {}): FakeGuest {
  const root = mkdtempSync(join(tmpdir(), "corral-fake-guest-"));
  const hostPath = (path: string) => join(root, path);
  const logEntries: LogEntry[] = [];
  const services: GuestService[] = [
    {
      name: "ssh.service",
      description: "OpenBSD Secure Shell server",
      state: "active",
      startup: "enabled",
    },
  ];
  const guest: FakeGuest = {
    root,
    hostPath,
    logEntries,
    writes: 0,
    services_: services,
    capabilities: {
      channel: "backdoor",
      os: "linux",
      streaming: true,
      interactiveStdin: true,
      pty: false,
      signals: true,
      maxOutputBytes: 64 * 2 ** 20,
      ...capabilities,
    },
    async ping() {},
    exec: (request) => execOnce(request, root),
    async execStream(request, handlers) {
      if (request.tty) throw new CorralError(ErrorCodes.UNSUPPORTED, "the fake guest has no pty");
      const child = spawnCommand(request, root);
      child.stdout.on("data", handlers.onStdout);
      child.stderr.on("data", handlers.onStderr);
      const exited = new Promise<{ exitCode: number }>((resolve) =>
        child.on("close", (code, signal) =>
          resolve({ exitCode: code ?? 128 + signalNumber(signal) }),
        ),
      );
      const running: RunningExec = {
        writeStdin: (chunk) => void child.stdin.write(chunk),
        closeStdin: () => void child.stdin.end(),
        signal: (name) => {
          if (child.exitCode === null && child.pid)
            process.kill(-child.pid, `SIG${name}` as NodeJS.Signals);
        },
        resize: () => undefined,
        exited,
      };
      return running;
    },
    async stat(path) {
      const info = await lstat(hostPath(path)).catch(() => {
        throw new CorralError(ErrorCodes.NOT_FOUND, `${path}: no such file in the guest`);
      });
      const type: FileStat["type"] = info.isFile()
        ? "file"
        : info.isDirectory()
          ? "directory"
          : info.isSymbolicLink()
            ? "symlink"
            : "other";
      return {
        path,
        type,
        sizeBytes: info.size,
        mode: info.mode & 0o7777,
        uid: info.uid,
        gid: info.gid,
        modifiedAt: info.mtime.toISOString(),
      };
    },
    async *readFile(path) {
      yield* createReadStream(hostPath(path), {
        highWaterMark: 256 * 1024,
      }) as AsyncIterable<Buffer>;
    },
    async writeFile(path, data, options) {
      guest.writes++;
      const target = hostPath(path);
      await mkdir(dirname(target), { recursive: true });
      const temporary = `${target}.corral-${randomBytes(4).toString("hex")}`;
      const file = await open(temporary, "w", options.mode ?? 0o644);
      const hash = createHash("sha256");
      let sizeBytes = 0;
      try {
        for await (const chunk of data) {
          hash.update(chunk);
          sizeBytes += chunk.length;
          await file.write(chunk);
        }
        await file.close();
        const sha256 = hash.digest("hex");
        if (options.sha256 !== undefined && options.sha256 !== sha256) {
          throw new CorralError(ErrorCodes.CHECKSUM_MISMATCH, `${path}: sha256 ${sha256}`);
        }
        await rename(temporary, target);
        return { sizeBytes, sha256 };
      } catch (error) {
        await file.close().catch(() => undefined);
        await rm(temporary, { force: true });
        throw error;
      }
    },
    async remove(path, options) {
      await lstat(hostPath(path)).catch(() => {
        throw new CorralError(ErrorCodes.NOT_FOUND, `${path}: no such file in the guest`);
      });
      await rm(hostPath(path), { recursive: options.recursive ?? false });
    },
    async systemInfo() {
      return {
        os: { family: "linux", name: "Fake", version: "1", kernel: "6.1.0" },
        hostname: "fake",
        cpus: 1,
        memory: { totalBytes: 2 ** 30, availableBytes: 2 ** 29 },
        filesystems: [{ mountpoint: "/", type: "ext4", totalBytes: 2 ** 33, usedBytes: 2 ** 30 }],
        interfaces: [{ name: "lo", mac: null, addresses: ["127.0.0.1/8"] }],
        uptimeS: 12.5,
        users: [],
      };
    },
    async processes() {
      return [
        { pid: 1, user: "root", command: "/sbin/init", cpuPercent: 0.5, rssBytes: 8 * 2 ** 20 },
      ];
    },
    async kill(pid, signal) {
      process.kill(pid, `SIG${signal}` as NodeJS.Signals);
    },
    async health() {
      return {
        agentRoundTripMs: 0.5,
        systemState: "running",
        load1: 0.1,
        memoryAvailableBytes: 2 ** 29,
        diskFreeBytes: 2 ** 32,
      };
    },
    async shutdown() {},
    async services() {
      return services;
    },
    async serviceAction(name, action) {
      const service = services.find((s) => s.name === name || s.name === `${name}.service`);
      if (!service) throw new CorralError(ErrorCodes.UNIT_NOT_FOUND, `no unit ${name}`);
      service.state = action === "stop" ? "inactive" : "active";
      return service;
    },
    async logs(query) {
      const matching = logEntries.filter(
        (entry) =>
          (query.since === undefined || Date.parse(entry.time) >= query.since.getTime()) &&
          (query.unit === undefined || entry.unit === query.unit) &&
          (query.identifier === undefined || entry.source === query.identifier) &&
          (query.priority === undefined || entry.priority <= query.priority),
      );
      return matching.slice(-(query.limit ?? 1000));
    },
  };
  return guest;
}

/** Runs a command to its end, as GuestOps.exec: 127 for a missing program, killed at its timeout. */
async function execOnce(request: ExecRequest, root: string): Promise<ExecOutcome> {
  const child = spawnCommand(request, root);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  child.stdin.end(request.stdin);
  let isTimedOut = false;
  const timer =
    request.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          isTimedOut = true;
          if (child.pid) process.kill(-child.pid, "SIGKILL");
        }, request.timeoutMs);
  const exitCode = await new Promise<number>((resolve) =>
    child.on("close", (code, signal) => resolve(code ?? 128 + signalNumber(signal))),
  );
  clearTimeout(timer);
  return {
    exitCode,
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr),
    isTimedOut,
    isStdoutTruncated: false,
    isStderrTruncated: false,
  };
}

/** bash running the command (argv too, exec'd by bash: a missing program is its 127). */
function spawnCommand(request: ExecRequest, root: string) {
  const script =
    request.command ??
    `exec ${(request.argv ?? []).map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(" ")}`;
  return spawn("bash", ["--norc", "-c", script], {
    cwd: request.cwd === undefined ? root : join(root, request.cwd),
    env: { ...process.env, ...request.env },
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : constants.signals[signal];
}
