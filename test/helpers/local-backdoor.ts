// A real bash on the host that speaks the backdoor-shell protocol over pipes, for protocol tests
// that need no VM: it prints the NixOS banner and then reads commands, as the guest service does.
// Its fd 9 stands in for the guest's `corral.stderr` port.

import { spawn } from "node:child_process";
import { Duplex, type Readable } from "node:stream";
import type { ShellStreams } from "../../src/guest/backdoor-shell.ts";

export interface LocalBackdoor {
  streams: ShellStreams;
  kill(): void;
}

export function startLocalBackdoor(banner = "Spawning backdoor root shell..."): LocalBackdoor {
  const child = spawn("bash", ["-c", `echo ${JSON.stringify(banner)}; exec bash --norc`], {
    stdio: ["pipe", "pipe", "inherit", "ignore", "ignore", "ignore", "ignore", "ignore", "ignore", "pipe"],
    detached: true,
  });
  const console = Duplex.from({ readable: child.stdout, writable: child.stdin });
  const stderr = child.stdio[9] as Readable;
  return {
    streams: { console, stderr },
    kill: () => {
      try {
        process.kill(-(child.pid ?? 0), "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}
