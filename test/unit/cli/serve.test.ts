// `corral serve` as a user runs it: the built CLI as a child process, answering on its socket and
// on TCP with the token that `corral serve token` prints, stopping cleanly on SIGTERM.

import { once } from "node:events";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../../../src/cli/api-client.ts";
import { collect, runCli, startCli, temporaryDir } from "../../helpers/cli.ts";

/** The settings a developer's environment may hold must not leak into these runs. */
const CLEAN_ENV = {
  CORRAL_SOCKET: "",
  CORRAL_TEMPLATES_DIR: "",
  CORRAL_LISTEN: "",
  CORRAL_STATE_DIR: "",
  CORRAL_LOG_LEVEL: "",
};

/** Polls until the daemon answers on `socket`, for up to 10 s. */
async function waitForHealth(socket: string): Promise<unknown> {
  await using client = new ApiClient({ socket });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await client.request("GET", "/v1/health");
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe("corral serve", () => {
  it("answers on its socket and on TCP with the token, and exits 0 on SIGTERM leaving no socket", async () => {
    const dir = temporaryDir("corral-serve-cli-");
    const socket = join(dir, "run", "corral.sock");
    const state = join(dir, "state");
    const child = startCli(
      ["serve", "--socket", socket, "--state-dir", state, "--listen", "127.0.0.1:0"],
      { ...CLEAN_ENV, CORRAL_TEMPLATES_DIR: join(dir, "templates") },
    );
    const result = collect(child);
    let logs = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      logs += chunk.toString();
    });
    expect(await waitForHealth(socket)).toMatchObject({ status: "ok" });

    const port = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(logs)?.[1];
    expect(port, logs).toBeDefined();
    const printed = await runCli(["serve", "token", "--state-dir", state], CLEAN_ENV);
    expect(printed).toMatchObject({ code: 0, stderr: "" });
    const token = printed.stdout.trim();
    expect(token).toBe(readFileSync(join(state, "api-token"), "utf8").trim());
    await using client = new ApiClient({ url: `http://127.0.0.1:${port}`, token });
    expect(await client.request("GET", "/v1/health")).toMatchObject({ status: "ok" });

    child.kill("SIGTERM");
    const { code, signal, stderr } = await result;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(stderr).toBe("\ncorral: SIGTERM: stopping and cleaning up (again to quit now)\n");
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(`${socket}.lock`)).toBe(false);
  });

  it("takes its settings from a config file, and refuses a bad one naming the line (exit 2)", async () => {
    const dir = temporaryDir("corral-serve-cli-");
    const config = join(dir, "corral.yaml");
    writeFileSync(
      config,
      "socket: run/c.sock\nstateDir: state\ntemplatesDir: templates\nlogLevel: warn\nlimits:\n  maxVms: 3\n",
    );
    const child = startCli(["serve", "--config", config], CLEAN_ENV);
    const result = collect(child);
    expect(await waitForHealth(join(dir, "run", "c.sock"))).toMatchObject({
      limits: { maxVms: 3 },
    });
    child.kill("SIGINT");
    expect((await result).code).toBe(0);

    writeFileSync(config, "socket: run/c.sock\nmaxVms: 3\n");
    const refused = await runCli(["serve", "--config", config], CLEAN_ENV);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `corral: daemon settings: ${config}:2:1: maxVms: unknown setting (known here: stateDir, templatesDir, socket, listen, logLevel, limits, networks)\n`,
    );
  });

  it("refuses to start on the socket or the state folder of a live daemon (exit 2)", async () => {
    const dir = temporaryDir("corral-serve-cli-");
    const socket = join(dir, "c.sock");
    const state = join(dir, "state");
    const first = startCli(
      ["serve", "--socket", socket, "--state-dir", state, "--log-level", "warn"],
      { ...CLEAN_ENV, CORRAL_TEMPLATES_DIR: join(dir, "templates") },
    );
    const firstResult = collect(first);
    await waitForHealth(socket);
    const second = await runCli(
      ["serve", "--socket", socket, "--state-dir", join(dir, "other")],
      CLEAN_ENV,
    );
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`a daemon is already listening on ${socket}`);
    expect(existsSync(join(dir, "other"))).toBe(false);
    const third = await runCli(
      ["serve", "--socket", join(dir, "d.sock"), "--state-dir", state],
      CLEAN_ENV,
    );
    expect(third.code).toBe(2);
    expect(third.stderr).toContain(
      `the state folder ${state} (another corral serve manages its VMs)`,
    );
    first.kill("SIGTERM");
    await once(first, "exit");
    expect((await firstResult).code).toBe(0);
  });

  it("describes every flag in --help", async () => {
    const help = await runCli(["serve", "--help"], CLEAN_ENV);
    expect(help.code).toBe(0);
    for (const flag of [
      "--config <file>",
      "--socket <path>",
      "--listen <host:port>",
      "--state-dir <dir>",
      "--templates-dir <dir>",
      "--log-level <level>",
      "--max-vms <n>",
      "--networks <mode>",
      "--network-run-dir <dir>",
      "--cleanup-network",
      "--stop-all",
    ]) {
      expect(help.stdout).toContain(flag);
    }
    const tokenHelp = await runCli(["serve", "token", "--help"], CLEAN_ENV);
    expect(tokenHelp.stdout).toContain("--state-dir <dir>");
  });
});
