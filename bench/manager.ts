// corral serve with VMs: GET /v1/vms with 100 VMs in the store (requests per second over the unix
// socket and TCP), a clone through the API against Machine.fromSnapshot in this process, and a
// daemon restart (SIGKILL) with 10 live VMs until every one is re-attached. Loopback only; every
// VM is stopped at the end (`--stop-all`).

import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../src/cli/api-client.ts";
import { SupervisedProcess } from "../src/host/supervised-process.ts";
import { loadOrCreateToken } from "../src/server/auth.ts";
import { CLI, log, median, results, timed } from "./measure.ts";
import { freePort, requestsPerSecond, waitForHealth } from "./server.ts";
import { restoreToFirstCommandMs } from "./snapshots.ts";

const IDLE_VMS = 100;
const CLONE_RUNS = 3;
const LIVE_VMS = 10;
const STOP_ALL_GRACE_MS = 120_000;
const SMALL = { template: "linux-default", cpus: 1, memoryMiB: 512 };

interface VmReply {
  id: string;
  name: string;
  state: string;
}

export async function benchManager(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "corral-bench-manager-"));
  const socket = join(dir, "corral.sock");
  const state = join(dir, "state");
  const port = await freePort();
  const serve = () =>
    SupervisedProcess.spawn(
      process.execPath,
      [
        ...[CLI, "serve", "--socket", socket, "--state-dir", state],
        ...["--templates-dir", join(dir, "templates"), "--listen", `127.0.0.1:${port}`],
        ...["--max-vms", String(IDLE_VMS + LIVE_VMS + CLONE_RUNS + 1), "--stop-all"],
        // Bridged networks are the network area's, inside a namespace: not the host's.
        ...["--networks", "off"],
      ],
      { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, CORRAL_LOG_LEVEL: "warn" } },
    );
  let daemon = await serve();
  try {
    await waitForHealth(socket);
    await using api = new ApiClient({ socket });
    const create = (body: object) => api.request<VmReply>("POST", "/v1/vms", { body });

    log(`${IDLE_VMS} VMs at rest in the store...`);
    for (let i = 0; i < IDLE_VMS; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          create({ name: `idle-${i + j}`, ...SMALL, start: false }),
        ),
      );
    }
    const token = await loadOrCreateToken(state);
    log("GET /v1/vms over the unix socket...");
    results.listVmsSocketRps = await requestsPerSecond({
      url: "http://corral/v1/vms",
      socketPath: socket,
    });
    log("GET /v1/vms over TCP with the token...");
    results.listVmsTcpRps = await requestsPerSecond({
      url: `http://127.0.0.1:${port}/v1/vms`,
      headers: { authorization: `Bearer ${token}` },
    });

    log("a booted VM and its snapshot...");
    await create({ name: "origin", ...SMALL });
    // Saved once booted, as --reuse-boot saves a machine: work still under way in a snapshot
    // would go on in every clone.
    await api.request("POST", "/v1/vms/origin/guest/execute", {
      body: { command: "systemctl is-system-running --wait; udevadm settle", timeoutMs: 300_000 },
    });
    const snapshot = await api.request<{ id: string }>("POST", "/v1/vms/origin/snapshots", {
      body: { name: "base" },
    });
    await api.request("POST", "/v1/vms/origin/stop", { body: { force: true } });
    const folder = join(state, "snapshots", snapshot.id);

    log(`Machine.fromSnapshot to the first command, ${CLONE_RUNS} runs...`);
    const library: number[] = [];
    for (let i = 0; i < CLONE_RUNS; i++) {
      library.push(await restoreToFirstCommandMs(folder, `lib${i}`));
    }
    // The API answers a clone once it is running, which for corral's images means its shell
    // has answered and the manager has given it its own hostname and machine id.
    log(`POST /v1/vms { fromSnapshot } until it answers, ${CLONE_RUNS} runs...`);
    const viaApi: number[] = [];
    for (let i = 0; i < CLONE_RUNS; i++) {
      viaApi.push(await timed(() => create({ name: `clone-${i}`, fromSnapshot: snapshot.id })));
      await api.request("DELETE", `/v1/vms/clone-${i}`);
    }
    results.libraryCloneMedianS = median(library) / 1000;
    results.apiCloneMedianS = median(viaApi) / 1000;
    results.apiCloneOverLibraryS = results.apiCloneMedianS - results.libraryCloneMedianS;

    log(`${LIVE_VMS} live clones, then the daemon killed (SIGKILL) and started again...`);
    await Promise.all(
      Array.from({ length: LIVE_VMS }, (_, i) =>
        create({ name: `live-${i}`, fromSnapshot: snapshot.id }),
      ),
    );
    daemon.child.kill("SIGKILL");
    await daemon.exited;
    results.restartWithLiveVmsS =
      (await timed(async () => {
        daemon = await serve();
        await waitForHealth(socket);
      })) / 1000;
    await using again = new ApiClient({ socket });
    const running = await again.request<VmReply[]>("GET", "/v1/vms?state=running");
    if (running.length !== LIVE_VMS) {
      throw new Error(`after the restart ${running.length} VMs run, not ${LIVE_VMS}`);
    }
  } finally {
    // --stop-all: the daemon powers every VM off before it exits.
    await daemon.stop(STOP_ALL_GRACE_MS);
    killQemusUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Kills any QEMU left running on a folder under `dir` (none, unless the daemon failed). */
function killQemusUnder(dir: string): void {
  spawnSync("pkill", ["-KILL", "-f", `qemu-system.*${dir}`]);
}
