// A fake VMM process for the backends' tests (it is neither Firecracker nor Cloud Hypervisor): run
// as `node fake-vmm-process.ts firecracker --api-sock <path>` or `… cloud-hypervisor
// --api-socket path=<path>`, it serves the fake API (test/fakes/fake-*.ts) and acts as the VMM
// process would around it: once the VM boots (or a snapshot loads) it prints a console line on
// stdout and answers the hybrid vsock handshake on the VM's vsock socket for every port (then
// echoes); Ctrl+Alt+Del or the power button ends it, as a guest shutting down would; SIGTERM too.

import { rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { FakeCloudHypervisor } from "./fake-cloud-hypervisor.ts";
import { FakeFirecracker } from "./fake-firecracker.ts";

const [kind, flag, value] = process.argv.slice(2);
let vsock: Server | undefined;

async function guestUp(vsockPath: string | undefined): Promise<void> {
  process.stdout.write("fake guest: booted\n");
  if (!vsockPath || vsock) return;
  await rm(vsockPath, { force: true });
  vsock = createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", (chunk: Buffer) => {
      const port = /^CONNECT (\d+)\n/.exec(chunk.toString())?.[1];
      if (!port) return void socket.destroy();
      socket.write(`OK ${port}\n`);
      socket.pipe(socket);
    });
  });
  vsock.listen(vsockPath);
}

function guestDown(): void {
  process.stdout.write("fake guest: powering off\n");
  setTimeout(() => process.exit(0), 20);
}

process.on("SIGTERM", () => process.exit(143));

if (kind === "firecracker" && flag === "--api-sock" && value) {
  const fake = await FakeFirecracker.listen(value);
  fake.onAnswered = (entry) => {
    const vsockPath = (fake.config.vsock as { uds_path?: string } | undefined)?.uds_path;
    const body = entry.body as { action_type?: string } | undefined;
    if (entry.status >= 300) return;
    if (entry.path === "/actions" && body?.action_type === "InstanceStart") void guestUp(vsockPath);
    if (entry.path === "/snapshot/load") void guestUp(vsockPath);
    if (entry.path === "/actions" && body?.action_type === "SendCtrlAltDel") guestDown();
  };
} else if (kind === "cloud-hypervisor" && flag === "--api-socket" && value?.startsWith("path=")) {
  const fake = await FakeCloudHypervisor.listen(value.slice("path=".length));
  fake.onAnswered = (entry) => {
    const vsockPath = (fake.config?.vsock as { socket?: string } | undefined)?.socket;
    if (entry.status >= 300) return;
    if (entry.path === "/vm.boot" || entry.path === "/vm.restore") void guestUp(vsockPath);
    if (entry.path === "/vm.power-button") guestDown();
  };
} else {
  process.stderr.write(`fake VMM: unknown arguments ${process.argv.slice(2).join(" ")}\n`);
  process.exit(2);
}
