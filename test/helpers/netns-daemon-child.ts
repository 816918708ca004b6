// The child side of netns-daemon.ts, run as `ip netns exec <ns> node netns-daemon-child.ts
// <config>`: the daemon (startDaemon, as `corral serve` runs it) inside the test's namespace, so
// that its bridges, dnsmasq, firewall and QEMU's TAPs are all there; and, over the IPC channel,
// guest commands through the daemon's own Machines (the API has no exec yet).

import type { DaemonConfig } from "../../src/server/config.ts";
import { startDaemon } from "../../src/server/daemon.ts";

export interface ExecRequest {
  id: number;
  vm: string;
  command: string;
  timeoutMs: number;
}

export type ChildMessage =
  | { ready: true }
  | { ready: false; error: string }
  | { id: number; exitCode: number; stdout: string; stderr: string }
  | { id: number; error: string };

const send = (message: ChildMessage) => process.send?.(message);

try {
  const daemon = await startDaemon(JSON.parse(process.argv[2] ?? "") as DaemonConfig);
  process.on("message", (request: ExecRequest) => {
    const machine = daemon.manager.vms.machineOf(request.vm);
    if (!machine) {
      send({ id: request.id, error: `the daemon has no machine of VM "${request.vm}"` });
      return;
    }
    machine.execute(request.command, { timeout: request.timeoutMs }).then(
      ({ exitCode, stdout, stderr }) => send({ id: request.id, exitCode, stdout, stderr }),
      (error: Error) => send({ id: request.id, error: error.message }),
    );
  });
  process.once("SIGTERM", () => {
    void daemon.close().then(() => process.exit(0));
  });
  send({ ready: true });
} catch (error) {
  process.send?.({ ready: false, error: (error as Error).stack ?? String(error) }, () =>
    process.exit(1),
  );
}
