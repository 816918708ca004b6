// A real bash on the host that speaks the backdoor-shell protocol over pipes, for protocol tests
// that need no VM: it prints the NixOS banner and then reads commands, as the guest service does.

import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { Duplex } from "node:stream";

export interface LocalBackdoor {
  stream: Duplex;
  kill(): void;
}

export function startLocalBackdoor(banner = "Spawning backdoor root shell..."): LocalBackdoor {
  const child = spawn("bash", ["-c", `echo ${JSON.stringify(banner)}; exec bash --norc`], {
    stdio: ["pipe", "pipe", "inherit"],
    detached: true,
  });
  const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
  return {
    stream,
    kill: () => {
      try {
        process.kill(-(child.pid ?? 0), "SIGKILL");
      } catch {
        // already gone
      }
      // The framing function keeps each command's stderr in this file (see shell-framing.ts).
      rmSync(`/dev/shm/corral-stderr.${child.pid}`, { force: true });
    },
  };
}
