// Where the daemon listens: a unix socket 0600 in a folder 0700, a stale socket replaced, a live
// daemon (or anything else there) left alone, a TCP address in use refused without leftovers.

import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { buildApp } from "../../../src/server/app.ts";
import { listen } from "../../../src/server/listen.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { http } from "../../helpers/http.ts";

async function quietApp() {
  const app = await buildApp({ logLevel: "silent" });
  onTestFinished(() => app.close());
  return app;
}

/** A socket file left by a process that was listening on it and was killed with SIGKILL. */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await once(child.stdout, "data");
  child.kill("SIGKILL");
  await once(child, "exit");
  expect(lstatSync(path).isSocket()).toBe(true);
}

describe("listen", () => {
  it("makes the socket 0600 in a new folder 0700, and removes both socket and lock on close", async () => {
    const socket = join(temporaryDir("corral-listen-"), "run", "corral", "corral.sock");
    const listening = await listen(await quietApp(), { socket });
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(socket, "..")).mode & 0o777).toBe(0o700);
    expect(statSync(join(socket, "..", "..")).mode & 0o777).toBe(0o700);
    expect(readFileSync(`${socket}.lock`, "utf8")).toMatch(new RegExp(`^${process.pid} `));
    expect((await http({ socket }, { path: "/v1/health" })).status).toBe(200);
    await listening.close();
    await listening.close();
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(`${socket}.lock`)).toBe(false);
  });

  it("leaves a folder that exists as it is", async () => {
    const dir = temporaryDir("corral-listen-");
    chmodSync(dir, 0o755);
    await using _listening = await listen(await quietApp(), { socket: join(dir, "c.sock") });
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, "c.sock")).mode & 0o777).toBe(0o600);
  });

  it("replaces a socket that a killed daemon left", async () => {
    const socket = join(temporaryDir("corral-listen-"), "corral.sock");
    await staleSocket(socket);
    await using _listening = await listen(await quietApp(), { socket });
    expect((await http({ socket }, { path: "/v1/health" })).status).toBe(200);
  });

  it("refuses a socket a live daemon listens on, and leaves that daemon answering", async () => {
    const socket = join(temporaryDir("corral-listen-"), "corral.sock");
    await using _first = await listen(await quietApp(), { socket });
    const second = await quietApp();
    await expect(listen(second, { socket })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: `a daemon is already listening on ${socket} (another corral serve?): stop it, or give this one another --socket`,
    });
    expect((await http({ socket }, { path: "/v1/health" })).status).toBe(200);
  });

  it("refuses a socket that another program listens on", async () => {
    const socket = join(temporaryDir("corral-listen-"), "other.sock");
    const other = createServer().listen(socket);
    await once(other, "listening");
    onTestFinished(() => {
      other.close();
    });
    await expect(listen(await quietApp(), { socket })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
    });
    expect(lstatSync(socket).isSocket()).toBe(true);
  });

  it("never replaces a file that is not a socket", async () => {
    const socket = join(temporaryDir("corral-listen-"), "notes.txt");
    writeFileSync(socket, "mine\n");
    await expect(listen(await quietApp(), { socket })).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: expect.stringContaining("exists and is not a socket"),
    });
    expect(readFileSync(socket, "utf8")).toBe("mine\n");
  });

  it("refuses a path too long for a unix socket, before creating anything", async () => {
    const dir = join(temporaryDir("corral-listen-"), "x".repeat(100));
    await expect(
      listen(await quietApp(), { socket: join(dir, "corral.sock") }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringMatching(/unix sockets allow 107: choose a shorter --socket$/),
    });
    expect(existsSync(dir)).toBe(false);
  });

  it("refuses a TCP address in use, and leaves no socket or lock behind", async () => {
    const dir = temporaryDir("corral-listen-");
    mkdirSync(join(dir, "run"));
    const socket = join(dir, "run", "corral.sock");
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    onTestFinished(() => {
      taken.close();
    });
    const { port } = taken.address() as { port: number };
    await expect(
      listen(await quietApp(), { socket, tcp: { host: "127.0.0.1", port } }),
    ).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: `the TCP address 127.0.0.1:${port} is in use: choose another --listen`,
    });
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(`${socket}.lock`)).toBe(false);
  });

  it("listens on IPv6 loopback too", async () => {
    const socket = join(temporaryDir("corral-listen-"), "corral.sock");
    await using listening = await listen(await quietApp(), {
      socket,
      tcp: { host: "::1", port: 0 },
    });
    expect(listening.tcp).toEqual({ host: "::1", port: expect.any(Number) });
  });
});
