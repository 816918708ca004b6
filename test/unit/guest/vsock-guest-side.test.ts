// The guest image's vsock side (recipes/debian-12: backdoor-vsock, vsock-ports) run on the host
// behind a fake hybrid vsock socket: systemd-socket-activate hands them unix listening sockets
// where systemd in a Firecracker or Cloud Hypervisor guest hands them vsock ones, and the host
// side is corral's own (HybridVsockTransport, BackdoorShell, TransferPort). What this cannot
// reach is vsock itself and the units' activation in a guest: not yet run on a real VMM.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { RunningVm } from "../../../src/backends/backend.ts";
import { Deadline } from "../../../src/deadline.ts";
import { BackdoorShell, type ShellStreams } from "../../../src/guest/backdoor-shell.ts";
import { GUEST_VSOCK_PORTS, HybridVsockTransport } from "../../../src/guest/hybrid-vsock.ts";
import { STDERR_PORT, STDOUT_PORT, XFER_PORT } from "../../../src/guest/shell-framing.ts";
import { TransferPort } from "../../../src/guest/transfer-port.ts";
import { GuestSession } from "../../../src/machine/guest-session.ts";
import { type FakeVsockMux, startFakeVsockMux } from "../../fakes/fake-vsock-mux.ts";

const scripts = join(
  import.meta.dirname,
  "../../../recipes/debian-12/overlay/usr/local/lib/corral",
);
const hasActivator = spawnSync("systemd-socket-activate", ["--version"]).status === 0;
const describeNothing = () => ["(no console)"];
const deadline = (timeout = 10_000) => new Deadline("vsock test", { timeout }, timeout);

let dir: string;
let mux: FakeVsockMux;
const children: ChildProcess[] = [];
let transport: HybridVsockTransport;

/** Runs `argv` under systemd-socket-activate on `<dir>/<port>` sockets, in a process group. */
function activate(ports: (number | string)[], argv: string[], accept = false): void {
  const listen = ports.flatMap((port) => [
    "-l",
    typeof port === "number" ? join(dir, String(port)) : port,
  ]);
  const child = spawn(
    "systemd-socket-activate",
    [
      ...(accept ? ["-a", "--inetd"] : []),
      ...listen,
      "-E",
      `CORRAL_PORTS_DIR=${join(dir, "ports")}`,
      ...argv,
    ],
    { detached: true, stdio: "ignore" },
  );
  children.push(child);
}

async function freeLoopbackPort(): Promise<string> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `127.0.0.1:${port}`;
}

async function connectShell(): Promise<BackdoorShell> {
  const [console, stdout, stderr] = await Promise.all(
    (["shell", "stdout", "stderr"] as const).map((port) => transport.open(port, deadline())),
  );
  return BackdoorShell.connect(
    { console, stdout, stderr } as ShellStreams,
    deadline(),
    describeNothing,
  );
}

beforeAll(async () => {
  if (!hasActivator) return;
  dir = mkdtempSync(join(tmpdir(), "corral-vsock-guest-"));
  const { shell, stdout, stderr, xfer } = GUEST_VSOCK_PORTS;
  // The loopback ports: free ones here (the guest's are 7701-7703).
  const loopback = await Promise.all([0, 1, 2].map(() => freeLoopbackPort()));
  activate(
    [stdout, stderr, xfer, ...loopback],
    [join(scripts, "vsock-ports"), STDOUT_PORT, STDERR_PORT, XFER_PORT],
  );
  activate([shell], [join(scripts, "backdoor-vsock")], true);
  mux = await startFakeVsockMux(join(dir, "vsock.sock"), dir);
  transport = new HybridVsockTransport(mux.path);
});

afterAll(async () => {
  if (!hasActivator) return;
  await mux[Symbol.asyncDispose]();
  for (const child of children) {
    if (child.pid && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
  }
  // The shells systemd-socket-activate started per connection are in its group; their commands
  // with a limit ran in groups of their own and ended by now.
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasActivator)(
  "the backdoor shell and guest ports over (fake) hybrid vsock",
  () => {
    it("runs commands with their output on the stdout and stderr ports", async () => {
      const shell = await connectShell();
      const reply = await shell.exec("echo out; echo err >&2; exit 3", deadline(), describeNothing);
      expect(reply).toMatchObject({ exitCode: 3 });
      expect(reply.stdout.toString()).toBe("out\n");
      expect(reply.stderr.toString()).toBe("err\n");
      // A command with a limit runs as a job of its own: the ports, pseudo-terminals here, are no
      // controlling terminal of the shell's, so reading one does not stop it.
      const killed = await shell.exec("echo begun; sleep 1000", deadline(1000), describeNothing, {
        guestDeadline: "kill",
      });
      expect(killed).toMatchObject({ isKilled: true, stdout: Buffer.from("begun\n") });
      const binary = await shell.exec("printf '\\0\\r\\n\\377'", deadline(), describeNothing);
      expect([...binary.stdout]).toEqual([0, 13, 10, 255]);
    });

    it("copies files both ways through the transfer port, byte for byte", async () => {
      const shell = await connectShell();
      const port = new TransferPort(await transport.open("xfer", deadline()));
      const bytes = randomBytes(300_000);
      writeFileSync(join(dir, "source.bin"), bytes);
      const call = () => ({ deadline: deadline(30_000), describe: describeNothing });
      await port.toGuest(shell, join(dir, "source.bin"), join(dir, "in-guest.bin"), call());
      expect(readFileSync(join(dir, "in-guest.bin"))).toEqual(bytes);
      await port.toHost(shell, join(dir, "in-guest.bin"), join(dir, "back.bin"), call());
      expect(readFileSync(join(dir, "back.bin"))).toEqual(bytes);
    });

    it("carries raw bytes both ways through the transfer port", async () => {
      const shell = await connectShell();
      const xfer = await transport.open("xfer", deadline());
      const bytes = randomBytes(300_000);
      const received: Buffer[] = [];
      xfer.on("data", (chunk: Buffer) => received.push(chunk));
      const reading = shell.exec(
        `exec 3<>"$__corral_xfer"; printf R >&3; head -c ${bytes.length} <&3 | sha256sum`,
        deadline(30_000),
        describeNothing,
      );
      await vi.waitFor(() => expect(Buffer.concat(received).toString()).toBe("R"));
      xfer.write(bytes);
      const sum = createHash("sha256").update(bytes).digest("hex");
      expect((await reading).stdout.toString()).toBe(`${sum}  -\n`);
      received.length = 0;
      writeFileSync(join(dir, "out.bin"), bytes);
      await shell.exec(
        `cat ${join(dir, "out.bin")} >"$__corral_xfer"`,
        deadline(30_000),
        describeNothing,
      );
      await vi.waitFor(() => expect(Buffer.concat(received).length).toBe(bytes.length));
      expect(Buffer.concat(received)).toEqual(bytes);
    });

    it("gives each host connection a shell of its own; the ports follow the latest one", async () => {
      const first = await connectShell();
      const firstPid = (await first.exec("echo $$", deadline(), describeNothing)).stdout.toString();
      // A second process attaching takes the ports over (the first may have gone without closing).
      const second = await connectShell();
      const secondPid = (
        await second.exec("echo $$", deadline(), describeNothing)
      ).stdout.toString();
      expect(secondPid).toMatch(/^\d+\n$/);
      expect(secondPid).not.toBe(firstPid);
      await expect(first.exec("true", deadline(), describeNothing)).rejects.toThrow(/closed/);
    });

    it("connects again when the shell has ended, and the new shell has the ports", async () => {
      // GuestSession needs only the VM's transport for a booted guest.
      const vm = { transport } as unknown as RunningVm;
      const session = new GuestSession(vm, "boot", describeNothing);
      const first = await session.shell(deadline());
      expect(session.isUp).toBe(true);
      await first.fire("kill -9 $$", deadline(), describeNothing);
      await first.connectionClosed;
      await vi.waitFor(() => expect(session.isUp).toBe(false));
      const second = await session.shell(deadline());
      expect(second).not.toBe(first);
      const reply = await second.exec("echo out; echo err >&2", deadline(), describeNothing);
      expect(reply).toMatchObject({ exitCode: 0 });
      expect([reply.stdout.toString(), reply.stderr.toString()]).toEqual(["out\n", "err\n"]);
      expect(await session.shell(deadline())).toBe(second);
    });
  },
);
