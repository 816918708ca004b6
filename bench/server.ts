// corral serve: requests per second of GET /v1/health over the unix socket and over TCP (with
// the token), measured with autocannon against the built daemon in its own process, loopback
// only, in bounded runs.

import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { ApiClient } from "../src/cli/api-client.ts";
import { SupervisedProcess } from "../src/host/supervised-process.ts";
import { loadOrCreateToken } from "../src/server/auth.ts";
import { CLI, log, results } from "./measure.ts";

const CONNECTIONS = 10;
const WARMUP_S = 1;
const DURATION_S = 5;

export async function benchServer(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "corral-bench-serve-"));
  try {
    const socket = join(dir, "corral.sock");
    const state = join(dir, "state");
    const port = await freePort();
    await using daemon = await SupervisedProcess.spawn(
      process.execPath,
      [
        ...[CLI, "serve", "--socket", socket, "--state-dir", state],
        ...["--listen", `127.0.0.1:${port}`, "--networks", "off"],
      ],
      { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, CORRAL_LOG_LEVEL: "warn" } },
    );
    await waitForHealth(socket);
    const token = await loadOrCreateToken(state);
    const path = "/v1/health";

    log(`GET ${path} over the unix socket, ${CONNECTIONS} connections, ${DURATION_S} s...`);
    results.healthSocketRps = await requestsPerSecond({
      url: `http://corral${path}`,
      socketPath: socket,
    });
    log(`GET ${path} over TCP with the token, ${CONNECTIONS} connections, ${DURATION_S} s...`);
    results.healthTcpRps = await requestsPerSecond({
      url: `http://127.0.0.1:${port}${path}`,
      headers: { authorization: `Bearer ${token}` },
    });
    await daemon.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The mean requests per second of a run after a warm-up; throws if any request failed. */
export async function requestsPerSecond(target: autocannon.Options): Promise<number> {
  await autocannon({ ...target, connections: CONNECTIONS, duration: WARMUP_S });
  const result = await autocannon({ ...target, connections: CONNECTIONS, duration: DURATION_S });
  if (result.errors > 0 || result.non2xx > 0) {
    throw new Error(
      `${target.url}: ${result.errors} connection errors, ${result.non2xx} answers other than 2xx`,
    );
  }
  return result.requests.average;
}

/** Resolves once the daemon on `socket` answers GET /v1/health (polled every 20 ms). */
export async function waitForHealth(socket: string): Promise<void> {
  await using client = new ApiClient({ socket });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await client.request("GET", "/v1/health");
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}
