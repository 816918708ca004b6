// The CLI's client of corral serve against a real daemon: answers, error bodies turned back into
// CorralErrors, the token over TCP, and a clear error when no daemon is there.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { Type } from "typebox";
import { describe, expect, it } from "vitest";
import { ApiClient, defaultApiTarget } from "../../../src/cli/api-client.ts";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { errorResponses } from "../../../src/server/schemas.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { startTestDaemon } from "../../helpers/http.ts";

const token = "client-test-token-0123456789-abcdefghijklmnop";

describe("ApiClient", () => {
  it("returns answers and turns error bodies back into CorralErrors", async () => {
    await using daemon = await startTestDaemon({
      routes: (app) => {
        app.post(
          "/v1/test/echo",
          {
            schema: {
              body: Type.Object({ cpus: Type.Integer({ minimum: 1 }) }),
              response: { 200: Type.Object({ cpus: Type.Integer() }), ...errorResponses },
            },
          },
          async (request) => {
            if (request.body.cpus > 8) {
              throw new CorralError(ErrorCodes.CONFLICT, "too many cpus", {
                details: ["the template allows 8"],
              });
            }
            return { cpus: request.body.cpus };
          },
        );
      },
    });
    await using client = new ApiClient({ socket: daemon.listening.socket });
    expect(await client.request("GET", "/v1/health")).toMatchObject({ status: "ok" });
    expect(await client.request("POST", "/v1/test/echo", { body: { cpus: 2 } })).toEqual({
      cpus: 2,
    });

    const conflict = await client
      .request("POST", "/v1/test/echo", { body: { cpus: 9 } })
      .catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(CorralError);
    expect(conflict).toMatchObject({
      code: ErrorCodes.CONFLICT,
      message: "too many cpus\nthe template allows 8",
      details: ["the template allows 8"],
    });
    await expect(
      client.request("POST", "/v1/test/echo", { body: { cpus: 0 } }),
    ).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: "body/cpus must be >= 1",
    });
    await expect(client.request("GET", "/v1/nope")).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
  });

  it("sends the token over TCP", async () => {
    await using daemon = await startTestDaemon({ token, tcp: { host: "127.0.0.1", port: 0 } });
    const url = `http://127.0.0.1:${daemon.listening.tcp?.port}`;
    await using client = new ApiClient({ url, token });
    expect(await client.request("GET", "/v1/health")).toMatchObject({ status: "ok" });
    await using wrong = new ApiClient({ url, token: "wrong" });
    await expect(wrong.request("GET", "/v1/health")).rejects.toMatchObject({
      code: ErrorCodes.UNAUTHORIZED,
    });
  });

  it("says that no daemon runs, and how to start one, when the socket is missing or stale", async () => {
    const dir = temporaryDir("corral-client-");
    const missing = join(dir, "missing.sock");
    await using client = new ApiClient({ socket: missing });
    await expect(client.request("GET", "/v1/health")).rejects.toMatchObject({
      code: ErrorCodes.DAEMON_UNREACHABLE,
      message: `no corral daemon at ${missing}: start one with \`corral serve\``,
    });

    // A socket file whose daemon was killed: the file is there, nothing accepts on it.
    const stale = join(dir, "stale.sock");
    const child = spawn(
      process.execPath,
      [
        "-e",
        `require("net").createServer().listen(${JSON.stringify(stale)}, () => console.log("up"))`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await once(child.stdout, "data");
    child.kill("SIGKILL");
    await once(child, "exit");
    await using staleClient = new ApiClient({ socket: stale });
    await expect(staleClient.request("GET", "/v1/health")).rejects.toMatchObject({
      code: ErrorCodes.DAEMON_UNREACHABLE,
      message: `no corral daemon at ${stale}: start one with \`corral serve\``,
    });

    await using tcpClient = new ApiClient({ url: "http://127.0.0.1:1", token });
    await expect(tcpClient.request("GET", "/v1/health")).rejects.toMatchObject({
      code: ErrorCodes.DAEMON_UNREACHABLE,
      message: "no corral daemon at http://127.0.0.1:1: start one with `corral serve`",
    });
  });

  it("fails with CORRAL_ABORTED when its signal fires", async () => {
    await using daemon = await startTestDaemon({
      routes: (app) => {
        app.get("/v1/test/slow", () => new Promise(() => {}));
      },
    });
    await using client = new ApiClient({ socket: daemon.listening.socket });
    const controller = new AbortController();
    const pending = client.request("GET", "/v1/test/slow", { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
  });
});

describe("defaultApiTarget", () => {
  it("is CORRAL_SOCKET, else the daemon's default socket", () => {
    expect(defaultApiTarget({ CORRAL_SOCKET: "/tmp/mine.sock" })).toEqual({
      socket: "/tmp/mine.sock",
    });
    expect(defaultApiTarget({ XDG_RUNTIME_DIR: "/run/user/7" })).toEqual({
      socket: "/run/user/7/corral/corral.sock",
    });
    expect(defaultApiTarget({})).toEqual({ socket: "/run/corral/corral.sock" });
  });
});
