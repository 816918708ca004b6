// A real bash on the host that speaks the backdoor-shell protocol over pipes, for protocol tests
// that need no VM: it prints the NixOS banner and then reads commands, as the guest service does.
// Its fds 8 and 9 stand in for the guest's `corral.stdout` and `corral.stderr` ports.

import { spawn } from "node:child_process";
import { Duplex, type Readable } from "node:stream";
import type { ShellStreams } from "../../src/guest/backdoor-shell.ts";

export interface LocalBackdoor {
  streams: ShellStreams;
  kill(): void;
}

export function startLocalBackdoor(banner = "Spawning backdoor root shell..."): LocalBackdoor {
  const child = spawn("bash", ["-c", `echo ${JSON.stringify(banner)}; exec bash --norc`], {
    stdio: [
      "pipe",
      "pipe",
      "inherit",
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
  const console = Duplex.from({ readable: child.stdout, writable: child.stdin });
  const ports = child.stdio as unknown as Readable[];
  return {
    streams: { console, stdout: ports[8] as Readable, stderr: ports[9] as Readable },
    kill: () => {
      try {
        process.kill(-(child.pid ?? 0), "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}
