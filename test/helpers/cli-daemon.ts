// `corral serve` as a user runs it (the built CLI, a child process) in a temporary folder of its
// own (socket, state, templates), for tests of the CLI's client commands; stopped with SIGTERM
// when the test ends, and any VM it left running (a test that failed half-way) killed.

import { once } from "node:events";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { ApiClient } from "../../src/cli/api-client.ts";
import { type CliResult, runCli, startCli, temporaryDir } from "./cli.ts";
import { killVmsUnder } from "./manager.ts";

/** Settings a developer's environment may hold that must not leak into a test's runs. */
export const CLEAN_ENV: Record<string, string> = {
  CORRAL_SOCKET: "",
  CORRAL_URL: "",
  CORRAL_TOKEN: "",
  CORRAL_LISTEN: "",
  CORRAL_STATE_DIR: "",
  CORRAL_TEMPLATES_DIR: "",
  CORRAL_LOG_LEVEL: "",
  CORRAL_MAX_UPLOAD_BYTES: "",
};

export interface CliDaemon {
  dir: string;
  socket: string;
  templatesDir: string;
  stateDir: string;
  /** The environment that points the CLI at this daemon's socket. */
  env: Record<string, string>;
  /** Runs the CLI against this daemon. */
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
}

/** Starts `corral serve` (with `args` added) and waits until it answers, for up to 10 s. */
export async function startCliDaemon(args: string[] = []): Promise<CliDaemon> {
  const dir = temporaryDir("corral-cli-daemon-");
  const socket = join(dir, "corral.sock");
  const stateDir = join(dir, "state");
  const templatesDir = join(dir, "templates");
  const child = startCli(
    ["serve", "--socket", socket, "--state-dir", stateDir, "--log-level", "warn", ...args],
    { ...CLEAN_ENV, CORRAL_TEMPLATES_DIR: templatesDir },
  );
  const exited = once(child, "exit");
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    await killVmsUnder(dir);
  });
  await waitForHealth(socket);
  const env = { ...CLEAN_ENV, CORRAL_SOCKET: socket };
  return {
    dir,
    socket,
    stateDir,
    templatesDir,
    env,
    cli: (cliArgs, extra = {}) => runCli(cliArgs, { ...env, ...extra }),
  };
}

async function waitForHealth(socket: string): Promise<void> {
  await using client = new ApiClient({ socket });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.request("GET", "/v1/health");
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
