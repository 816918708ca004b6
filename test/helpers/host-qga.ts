// The real qemu-ga (Debian's qemu-guest-agent) on the host, for protocol tests that need no VM:
// it listens on a unix socket in a temporary folder, which is also its working folder, its state
// folder and where its pid file goes. It runs as root on the host, so it is kept from what could
// touch the host: commands that shut down, suspend, freeze, trim or set anything are blocked
// (`-b`), no config file is read (QGA_CONF names a missing one), and it runs in a mount namespace
// of its own where /dev/log is /dev/null, so its "guest-exec called" lines reach no syslog.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../../src/deadline.ts";
import type { QgaOpen } from "../../src/guest/qga-client.ts";

/** Where Debian puts the agent; `apt-get install qemu-guest-agent` provides it. */
export const QEMU_GA = "/usr/sbin/qemu-ga";

/** Commands that would change the host: the agent refuses them ("has been disabled"). */
const BLOCKED = [
  "guest-shutdown",
  "guest-suspend-disk",
  "guest-suspend-ram",
  "guest-suspend-hybrid",
  "guest-fsfreeze-freeze",
  "guest-fsfreeze-freeze-list",
  "guest-fsfreeze-thaw",
  "guest-fstrim",
  "guest-set-time",
  "guest-set-vcpus",
  "guest-set-memory-blocks",
  "guest-set-user-password",
  "guest-ssh-add-authorized-keys",
  "guest-ssh-remove-authorized-keys",
];

const MUTE_SYSLOG = '[ ! -e /dev/log ] || mount --bind /dev/null /dev/log || exit; exec "$@"';

export interface HostQga {
  /** The temporary folder: the agent's working, state and pid-file folder. */
  dir: string;
  /** The running agent's pid. */
  pid(): number;
  /** Connects to the agent's socket (fails while no agent listens). */
  open: QgaOpen;
  /** Starts the agent (again); resolves once it listens. */
  start(): Promise<void>;
  /** Kills the agent and what its commands left in its process group, with SIGKILL. */
  kill(): Promise<void>;
  /** What the agents wrote to stderr. */
  stderr(): string;
  /** Kills the agent and removes the folder. */
  dispose(): Promise<void>;
}

export async function startHostQga(): Promise<HostQga> {
  if (!existsSync(QEMU_GA)) {
    throw new Error(`${QEMU_GA} is missing: apt-get install -y qemu-guest-agent`);
  }
  const dir = mkdtempSync(join(tmpdir(), "corral-qga-"));
  const socket = join(dir, "qga.sock");
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = "";

  const kill = async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await exited;
  };

  const start = async () => {
    await kill();
    rmSync(socket, { force: true });
    const args = [
      ...["-m", "unix-listen", "-p", socket],
      ...["-t", dir, "-f", join(dir, "qga.pid")],
      ...["-b", BLOCKED.join(",")],
    ];
    const started = spawn(
      "unshare",
      [
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        MUTE_SYSLOG,
        "sh",
        QEMU_GA,
        ...args,
      ],
      {
        cwd: dir,
        env: { ...process.env, QGA_CONF: join(dir, "qemu-ga.conf") },
        detached: true,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    child = started;
    exited = new Promise((resolve) => started.once("exit", () => resolve()));
    started.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-10_000);
    });
    // The socket file appears at bind(), a moment before the agent listens: try to connect.
    for (let waited = 0; !(await canConnect(socket)); waited += 10) {
      if (started.exitCode !== null || waited > 5000) {
        throw new Error(`qemu-ga did not start listening on ${socket}: ${stderr}`);
      }
      await sleep(10);
    }
  };

  const open: QgaOpen = (deadline: Deadline) =>
    deadline.race(
      new Promise((resolve, reject) => {
        const stream = connect(socket);
        stream.once("connect", () => resolve(stream));
        stream.once("error", reject);
      }),
    );

  await start();
  return {
    dir,
    pid: () => {
      if (child?.pid === undefined) throw new Error("qemu-ga is not running");
      return child.pid;
    },
    open,
    start,
    kill,
    stderr: () => stderr,
    dispose: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether something accepts a connection on `socket` (closed at once: the agent goes on). */
function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(socket);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}
