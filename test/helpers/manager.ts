// A real manager daemon for tests of the VM API: in this process (startManagerDaemon) or as
// `corral serve` in a child process (spawnServe), in a temporary state folder; JSON calls over its
// unix socket, and a server-sent events reader.

import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Daemon, startDaemon } from "../../src/server/daemon.ts";
import { startCli } from "./cli.ts";
import { type HttpAnswer, http } from "./http.ts";

export type Api = (method: string, path: string, body?: unknown) => Promise<HttpAnswer>;

/** JSON calls to the daemon on `socket`. */
export function apiOn(socket: string): Api {
  return (method, path, body) => http({ socket }, { method, path, body });
}

export interface ManagerDaemon extends AsyncDisposable {
  daemon: Daemon;
  stateDir: string;
  socket: string;
  api: Api;
}

/**
 * A manager daemon in this process, in a new state folder. Disposing it closes it (its VMs run
 * on), then kills every QEMU under the folder and removes the folder.
 */
export async function startManagerDaemon(
  options: { maxVms?: number; maxUploadBytes?: number; heartbeatMs?: number } = {},
): Promise<ManagerDaemon> {
  const stateDir = await mkdtemp(join(tmpdir(), "corral-manager-"));
  const socket = join(stateDir, "corral.sock");
  const daemon = await startDaemon(
    {
      stateDir,
      templatesDir: join(stateDir, "templates"),
      socket,
      listen: undefined,
      logLevel: "silent",
      limits: {
        maxVms: options.maxVms ?? 64,
        maxUploadBytes: options.maxUploadBytes ?? 4 * 2 ** 30,
      },
      // Tests never touch the host's own network: bridged networks are tested in namespaces.
      networks: { mode: "off", runDir: join(stateDir, "networks") },
    },
    options.heartbeatMs === undefined ? {} : { eventsHeartbeatMs: options.heartbeatMs },
  );
  return {
    daemon,
    stateDir,
    socket,
    api: apiOn(socket),
    async [Symbol.asyncDispose]() {
      await daemon.close();
      await killVmsUnder(stateDir);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** `corral serve` on `stateDir` as a child process; resolves once it answers on its socket. */
export async function spawnServe(
  stateDir: string,
  extraArgs: string[] = [],
): Promise<ChildProcess> {
  const socket = join(stateDir, "corral.sock");
  const child = startCli([
    ...["serve", "--state-dir", stateDir, "--socket", socket, "--log-level", "warn"],
    ...["--templates-dir", join(stateDir, "templates")],
    ...extraArgs,
  ]);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const api = apiOn(socket);
  for (const until = Date.now() + 60_000; Date.now() < until; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`corral serve exited early:\n${stderr}`);
    const answer = await api("GET", "/v1/health").catch(() => undefined);
    if (answer?.status === 200) return child;
  }
  child.kill("SIGKILL");
  throw new Error(`corral serve did not answer within 60 s:\n${stderr}`);
}

/** Kills (SIGKILL) every QEMU whose command line names a folder under `dir`. */
export async function killVmsUnder(dir: string): Promise<void> {
  const pids = qemuPidsUnder(dir);
  for (const pid of pids) process.kill(pid, "SIGKILL");
  while (qemuPidsUnder(dir).length > 0) await sleep(50);
}

/** The pids of the QEMU processes whose command line names a folder under `dir`. */
export function qemuPidsUnder(dir: string): number[] {
  const found = spawnSync("pgrep", ["-f", `qemu-system.*${dir}`], { encoding: "utf8" });
  return found.stdout
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

export interface ServerSentEvent {
  id: string | undefined;
  event: string | undefined;
  data: unknown;
}

export interface EventStream {
  status: Promise<number>;
  /** Every event so far. */
  events: ServerSentEvent[];
  /** Every comment line so far (heartbeats), without the ":". */
  comments: string[];
  /** Resolves once the server ends the stream. */
  ended: Promise<void>;
  /** The first event (from the start) that `matches`, once it has arrived. */
  waitFor(
    matches: (event: ServerSentEvent) => boolean,
    timeoutMs?: number,
  ): Promise<ServerSentEvent>;
  close(): void;
}

/** Opens GET `path` on the daemon at `socket` as a server-sent events stream. */
export function openEventStream(
  socket: string,
  path: string,
  headers: Record<string, string> = {},
): EventStream {
  const events: ServerSentEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  let resolveStatus: (status: number) => void = () => undefined;
  let resolveEnded: () => void = () => undefined;
  const status = new Promise<number>((resolve) => {
    resolveStatus = resolve;
  });
  const ended = new Promise<void>((resolve) => {
    resolveEnded = resolve;
  });
  const req = request({ socketPath: socket, path, headers }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    res.setEncoding("utf8");
    let buffer = "";
    res.on("data", (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event: ServerSentEvent = { id: undefined, event: undefined, data: undefined };
        let isEvent = false;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) comments.push(line.slice(1).trim());
          const match = /^(id|event|data): ?(.*)$/.exec(line);
          if (!match) continue;
          isEvent = true;
          if (match[1] === "data") event.data = JSON.parse(match[2] ?? "null");
          else event[match[1] as "id" | "event"] = match[2];
        }
        if (isEvent) events.push(event);
      }
      for (const wake of waiters) wake();
    });
    res.on("end", resolveEnded);
    res.on("close", resolveEnded);
  });
  req.on("error", () => resolveEnded());
  req.end();
  return {
    status,
    events,
    comments,
    ended,
    waitFor(matches, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(matches);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events)}`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => req.destroy(),
  };
}
