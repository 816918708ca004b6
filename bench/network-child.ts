// The network area's measurements, run by network.ts inside a namespace it made (`ip netns exec`),
// so that the daemon's bridges, dnsmasq, firewall and TAPs never touch the host: a daemon with
// bridged networks in this process, two of its VMs, and two `corral test`-style machines on a
// vde VLAN for the same transfers. Prints its figures as one JSON line on stdout.

import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../src/cli/api-client.ts";
import { shellQuote } from "../src/guest/shell-quote.ts";
import { runProgram } from "../src/host/run-program.ts";
import { VlanSwitch } from "../src/host/vlan-switch.ts";
import { Machine } from "../src/machine/machine.ts";
import { startDaemon } from "../src/server/daemon.ts";
import { log, median, timed } from "./measure.ts";

const TRANSFER_MIB = 128;
const TRANSFER_RUNS = 3;
const CREATE_RUNS = 5;
const SMALL = { cpus: 1, memoryMiB: 512 };
/** A sparse file: the guest reads zeros without touching its disk. */
const SERVE_BIG = `mkdir -p /tmp/www && truncate -s ${TRANSFER_MIB}M /tmp/www/big && busybox httpd -p 80 -h /tmp/www`;

/** curl's arguments for a download of the big file, printing its size and its speed. */
function curlBig(url: string): string[] {
  return ["-sS", "-m", "600", "-o", "/dev/null", "-w", "%{size_download} %{speed_download}", url];
}

/** A download of the big file in a guest: its speed in MiB/s. */
async function guestFetch(machine: Machine, url: string): Promise<number> {
  const command = ["curl", ...curlBig(url)].map(shellQuote).join(" ");
  return mibPerS(await machine.succeed(command, { timeout: 700_000 }));
}

/** A download of the big file from this namespace: its speed in MiB/s. */
async function hostFetch(url: string): Promise<number> {
  return mibPerS((await runProgram("curl", curlBig(url))).stdout);
}

function mibPerS(curlOutput: string): number {
  const [size, bytesPerS] = curlOutput.trim().split(" ").map(Number);
  if (size !== TRANSFER_MIB * 2 ** 20) throw new Error(`a transfer got ${size} bytes`);
  return (bytesPerS ?? 0) / 2 ** 20;
}

async function medianOf(runs: number, measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await measure());
  return median(values);
}

const results: Record<string, number> = {};
const dir = await mkdtemp(join(tmpdir(), "corral-bench-network-"));
await chmod(dir, 0o755);
const daemon = await startDaemon({
  stateDir: join(dir, "state"),
  templatesDir: join(dir, "templates"),
  socket: join(dir, "corral.sock"),
  listen: undefined,
  logLevel: "warn",
  limits: { maxVms: 32, maxUploadBytes: 4 * 2 ** 30 },
  networks: { mode: "auto", runDir: join(dir, "networks") },
});
try {
  await using api = new ApiClient({ socket: daemon.socket });
  const guest = (name: string) => {
    const machine = daemon.manager.vms.machineOf(name);
    if (!machine) throw new Error(`no machine of ${name}`);
    return machine;
  };

  log(`create a network, ${CREATE_RUNS} runs...`);
  results.networkCreateMedianMs = await medianOf(CREATE_RUNS, async () => {
    const name = `bench-${Math.random().toString(36).slice(2, 8)}`;
    const ms = await timed(() => api.request("POST", "/v1/networks", { body: { name } }));
    await api.request("DELETE", `/v1/networks/${name}`);
    return ms;
  });

  log(`create a VM (not started) with and without a NIC, ${CREATE_RUNS} runs each...`);
  let made = 0;
  const createMs = (networks: string[]) =>
    medianOf(CREATE_RUNS, async () => {
      const name = `idle-${made++}`;
      const body = { name, ...SMALL, networks, start: false };
      const ms = await timed(() => api.request("POST", "/v1/vms", { body }));
      await api.request("DELETE", `/v1/vms/${name}`);
      return ms;
    });
  results.vmCreateNoNicMedianMs = await createMs([]);
  results.vmCreateWithNicMedianMs = await createMs(["corral0"]);

  log("two VMs on corral0...");
  await api.request("POST", "/v1/vms", { body: { name: "server", ...SMALL } });
  await api.request("POST", "/v1/vms", { body: { name: "client", ...SMALL } });
  await guest("server").succeed(SERVE_BIG);

  log(`a port forward added and removed, ${CREATE_RUNS} runs...`);
  const forwardMs: number[] = [];
  for (let i = 0; i < CREATE_RUNS; i++) {
    const body = { hostPort: 8080, guestPort: 80 };
    forwardMs.push(await timed(() => api.request("POST", "/v1/vms/server/ports", { body })));
    await api.request("DELETE", "/v1/vms/server/ports/8080");
  }
  results.portForwardAddMedianMs = median(forwardMs);

  log(`${TRANSFER_MIB} MiB VM to VM over the bridge, ${TRANSFER_RUNS} runs...`);
  results.bridgeVmToVmMiBPerS = await medianOf(TRANSFER_RUNS, () =>
    guestFetch(guest("client"), "http://server/big"),
  );
  log(`${TRANSFER_MIB} MiB host to VM through a port forward, ${TRANSFER_RUNS} runs...`);
  await api.request("POST", "/v1/vms/server/ports", { body: { hostPort: 8080, guestPort: 80 } });
  results.bridgeForwardHostToVmMiBPerS = await medianOf(TRANSFER_RUNS, () =>
    hostFetch("http://127.0.0.1:8080/big"),
  );

  log("two machines on a vde VLAN, as corral test runs them...");
  await using vlan = await VlanSwitch.start(1, dir);
  const vlans = [{ vlan: 1, switchSocket: vlan.socket }];
  await using server = new Machine({ name: "vserver", ...SMALL, vlans, node: 1 });
  await using client = new Machine({ name: "vclient", ...SMALL, vlans, node: 2 });
  // Their VLAN addresses come when udev has loaded the NIC driver, after the shell answers.
  await Promise.all(
    [server, client].map((machine, i) =>
      machine.waitUntilSucceeds(`ip -4 -o address show dev eth1 | grep -q 192.168.1.${i + 1}/`, {
        timeout: 300_000,
      }),
    ),
  );
  await server.succeed(SERVE_BIG);
  log(`${TRANSFER_MIB} MiB VM to VM over the VLAN, ${TRANSFER_RUNS} runs...`);
  results.vlanVmToVmMiBPerS = await medianOf(TRANSFER_RUNS, () =>
    guestFetch(client, "http://192.168.1.1/big"),
  );
  log(`${TRANSFER_MIB} MiB host to VM through user-mode hostfwd, ${TRANSFER_RUNS} runs...`);
  const port = await server.forwardPort(0, 80);
  results.userForwardHostToVmMiBPerS = await medianOf(TRANSFER_RUNS, () =>
    hostFetch(`http://127.0.0.1:${port}/big`),
  );
} finally {
  await daemon.close({ stopVms: true });
  await rm(dir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(results)}\n`);
