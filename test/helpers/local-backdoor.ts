// A real bash on the host that speaks the backdoor-shell protocol over pipes, for protocol tests
// that need no VM: it prints the NixOS banner and then reads commands, as the guest service does.
// Its fds 8 and 9 stand in for the guest's `corral.stdout` and `corral.stderr` ports, and a TCP
// relay on 127.0.0.1 for the `corral.xfer` port (bash opens /dev/tcp/… where the guest opens the
// device). It runs in a temporary folder that kill() removes.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex, type Readable } from "node:stream";
import type { ShellStreams } from "../../src/guest/backdoor-shell.ts";

export interface LocalBackdoor {
  streams: ShellStreams;
  /** The shell's working folder: a temporary folder that kill() removes. */
  dir: string;
  /** The host's end of the transfer port. */
  transfer: Duplex;
  /**
   * Kills the running shell with SIGKILL, as `kill -9 $$` would; with `withCommands`, then also
   * what its commands left running (not its watcher), as systemd does before a restart.
   */
  killShell(withCommands?: boolean): void;
  /** What the shells wrote to their stderr (the guest's serial console). */
  stderr(): string;
  /** Ends every process of the backdoor and removes its folder. */
  kill(): void;
}

export interface LocalBackdoorOptions {
  banner?: string;
  /** Start a new shell, with a new banner, when the shell dies (as corral's image does). */
  restarts?: boolean;
  /** Hold each chunk the host sends through the transfer port this long: a slow guest. */
  transferDelayMs?: number;
}

export async function startLocalBackdoor(
  options: LocalBackdoorOptions = {},
): Promise<LocalBackdoor> {
  const dir = mkdtempSync(join(tmpdir(), "corral-local-backdoor-"));
  const relay = await startRelay(options.transferDelayMs ?? 0);
  const banner = options.banner ?? "Spawning backdoor root shell...";
  // Like the guest's backdoor script: drop input left for a dead shell, print the banner.
  const script = [
    "while :; do",
    "  while read -r -t 0; do IFS= read -r -t 0.05 _; done",
    `  echo ${JSON.stringify(banner)}`,
    // Not spelled "bash --norc" here: `pkill -f 'bash --norc'` must spare this loop, as in the guest.
    '  "$BASH" --norc <&0 & echo $! > shell.pid; wait $!',
    options.restarts ? "" : "  exec sleep infinity",
    "done",
  ].join("\n");
  const child = spawn("bash", ["-c", script], {
    cwd: dir,
    env: { ...process.env, __corral_xfer: `/dev/tcp/127.0.0.1/${relay.port}` },
    stdio: [
      "pipe",
      "pipe",
      "pipe",
      "ignore",
      "ignore",
      "ignore",
      "ignore",
      "ignore",
      "pipe",
      "pipe",
    ],
    detached: true,
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-10_000);
  });
  const console = Duplex.from({ readable: child.stdout, writable: child.stdin });
  const ports = child.stdio as unknown as Readable[];
  return {
    streams: { console, stdout: ports[8] as Readable, stderr: ports[9] as Readable },
    dir,
    transfer: relay.duplex,
    killShell: (withCommands = false) => {
      process.kill(Number(readFileSync(join(dir, "shell.pid"), "utf8")), "SIGKILL");
      if (!withCommands) return;
      const ps = spawnSync("ps", ["-s", String(child.pid), "-o", "pid=,args="]).stdout.toString();
      for (const line of ps.trim().split("\n")) {
        const [, pid, args] = /^\s*(\d+) (.*)$/.exec(line) ?? [];
        if (pid && Number(pid) !== child.pid && !args?.startsWith("corral-shell-watch"))
          killIfAlive(Number(pid));
      }
    },
    stderr: () => stderr,
    kill: () => {
      // Commands with a limit run in process groups of their own, in the backdoor's session.
      spawnSync("pkill", ["-KILL", "-s", String(child.pid)]);
      relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The host's end of the transfer port: one stream for the whole session, while the guest side
 * connects anew for each transfer. Bytes written while no connection is open wait for the
 * next one, as QEMU holds them while the guest has the port closed.
 */
async function startRelay(
  delayMs: number,
): Promise<{ port: number; duplex: Duplex; close: () => void }> {
  let current: Socket | undefined;
  const waiting: { chunk: Buffer; done: () => void }[] = [];
  const deliver = (chunk: Buffer, done: () => void) => {
    if (current && !current.destroyed) current.write(chunk, () => done());
    else waiting.push({ chunk, done });
  };
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      if (delayMs > 0) setTimeout(() => deliver(chunk, () => done()), delayMs);
      else deliver(chunk, () => done());
    },
  });
  const server = createServer((socket) => {
    current = socket;
    socket.on("data", (chunk) => duplex.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      if (current === socket) current = undefined;
    });
    for (const { chunk, done } of waiting.splice(0)) deliver(chunk, done);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    duplex,
    close: () => {
      current?.destroy();
      server.close();
    },
  };
}

/** SIGKILL to `pid`, unless it has ended since it was listed (ps and the kill race). */
function killIfAlive(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
