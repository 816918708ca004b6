// Guest operations through the API, per guest channel (the backdoor shell, qemu-ga): the round
// trip of POST …/guest/execute `true` against the same call without HTTP in the same run
// (Machine.execute for the backdoor shell, the manager's GuestOps for qemu-ga), and 64 MiB up and
// down through …/guest/files against GuestOps' own writeFile/readFile. The daemon runs in this
// process, so that both sides reach the same VM; its HTTP client and server share one event
// loop, which makes the overhead measured an upper bound. Every VM is stopped at the end.

import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../src/cli/api-client.ts";
import { Deadline } from "../src/deadline.ts";
import { startDaemon } from "../src/server/daemon.ts";
import { log, median, results, timed } from "./measure.ts";

const ROUND_TRIPS = { backdoor: 200, qga: 50 } as const;
const TRANSFER_MIB = 64;
const CHANNELS = ["backdoor", "qga"] as const;

export async function benchGuestApi(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "corral-bench-guest-"));
  const daemon = await startDaemon({
    stateDir: join(dir, "state"),
    templatesDir: join(dir, "templates"),
    socket: join(dir, "corral.sock"),
    listen: undefined,
    logLevel: "warn",
    limits: { maxVms: 4, maxUploadBytes: 2 * TRANSFER_MIB * 2 ** 20 },
    // Loopback only: the host's own network is never touched by a benchmark.
    networks: { mode: "off", runDir: join(dir, "networks") },
  });
  const api = new ApiClient({ socket: daemon.socket });
  const call = (method: "GET" | "POST", path: string, body?: unknown) =>
    api.request(method, path, body === undefined ? {} : { body });
  const payload = randomBytes(TRANSFER_MIB * 2 ** 20);
  const sha256 = createHash("sha256").update(payload).digest("hex");
  try {
    await call("POST", "/v1/templates", {
      name: "bench-qga",
      os: "linux",
      image: "debian-12",
      cpus: 1,
      memoryMiB: 512,
      guestChannel: "qga",
    });
    for (const channel of CHANNELS) {
      const vm = `bench-${channel}`;
      log(`a VM on the ${channel} channel...`);
      await call("POST", "/v1/vms", {
        name: vm,
        ...(channel === "qga" ? { template: "bench-qga" } : { cpus: 1, memoryMiB: 512 }),
      });
      const guest = await daemon.manager.vms.guest(vm);
      if (guest.capabilities.channel !== channel) {
        throw new Error(`${vm} reaches its guest through ${guest.capabilities.channel}`);
      }
      const runs = ROUND_TRIPS[channel];
      log(`POST …/guest/execute true, ${runs} runs, and the same without HTTP...`);
      const viaApi: number[] = [];
      const direct: number[] = [];
      const machine = daemon.manager.vms.machineOf(vm);
      for (let i = 0; i < runs; i++) {
        viaApi.push(
          await timed(() => call("POST", `/v1/vms/${vm}/guest/execute`, { command: "true" })),
        );
        direct.push(
          await timed(async () => {
            if (channel === "backdoor" && machine) await machine.execute("true");
            else await guest.exec({ command: "true" }, new Deadline("bench exec", {}, Infinity));
          }),
        );
      }
      const key = channel === "backdoor" ? "Backdoor" : "Qga";
      results[`apiExec${key}MedianMs`] = median(viaApi);
      results[`directExec${key}MedianMs`] = median(direct);
      results[`apiExecOverhead${key}Ms`] = median(viaApi) - median(direct);

      log(`${TRANSFER_MIB} MiB up and down through …/guest/files...`);
      const path = `/v1/vms/${vm}/guest/files?path=/root/bench.bin`;
      const upMs = await timed(() =>
        api.upload("PUT", path, chunksOf(payload), { headers: { "x-corral-sha256": sha256 } }),
      );
      const downMs = await timed(async () => {
        const answer = await api.download(path);
        const hash = createHash("sha256");
        for await (const chunk of answer.body) hash.update(chunk);
        if (hash.digest("hex") !== sha256 || answer.trailers["x-corral-sha256"] !== sha256) {
          throw new Error("download: the sha256 differs");
        }
      });
      results[`upload${key}MiBPerS`] = TRANSFER_MIB / (upMs / 1000);
      results[`download${key}MiBPerS`] = TRANSFER_MIB / (downMs / 1000);

      log(`${TRANSFER_MIB} MiB up and down through GuestOps, without HTTP...`);
      const deadline = () => new Deadline("bench transfer", {}, 3_600_000);
      const directUpMs = await timed(() =>
        guest.writeFile("/root/bench.bin", chunksOf(payload), { sha256 }, deadline()),
      );
      const directDownMs = await timed(async () => {
        for await (const _chunk of guest.readFile("/root/bench.bin", deadline()));
      });
      results[`directUpload${key}MiBPerS`] = TRANSFER_MIB / (directUpMs / 1000);
      results[`directDownload${key}MiBPerS`] = TRANSFER_MIB / (directDownMs / 1000);
      await call("POST", `/v1/vms/${vm}/stop`, { force: true });
    }
  } finally {
    await api.close();
    await daemon.close({ stopVms: true });
    await rm(dir, { recursive: true, force: true });
  }
}

async function* chunksOf(bytes: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += 2 ** 20) yield bytes.subarray(at, at + 2 ** 20);
}
