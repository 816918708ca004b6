// The CLI's client of corral serve against a real daemon: answers, error bodies turned back into
// CorralErrors, the token over TCP, and a clear error when no daemon is there.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { Type } from "typebox";
import { describe, expect, it } from "vitest";
import { ApiClient, ApiError, apiTarget, defaultApiTarget } from "../../../src/cli/api-client.ts";
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

describe("apiTarget", () => {
  it("takes --socket or --url (with CORRAL_TOKEN), else CORRAL_URL, else the socket", () => {
    const env = { CORRAL_SOCKET: "/tmp/env.sock", CORRAL_TOKEN: "t0ken" };
    expect(apiTarget({ socket: "/tmp/flag.sock" }, env)).toEqual({ socket: "/tmp/flag.sock" });
    expect(apiTarget({ url: "http://h:1" }, env)).toEqual({ url: "http://h:1", token: "t0ken" });
    expect(apiTarget({}, { ...env, CORRAL_URL: "http://h:2" })).toEqual({
      url: "http://h:2",
      token: "t0ken",
    });
    expect(apiTarget({}, env)).toEqual({ socket: "/tmp/env.sock" });
    expect(() => apiTarget({ url: "http://h:1" }, {})).toThrow(/set CORRAL_TOKEN/);
    expect(() => apiTarget({ url: "http://h:1", socket: "/s" }, env)).toThrow(/not both/);
  });
});

describe("ApiClient.events", () => {
  it("reads server-sent events: ids, types, multi-line data; comments skipped", async () => {
    await using daemon = await startTestDaemon({
      routes: (app) => {
        app.get("/v1/test/stream", (_request, reply) => {
          reply.hijack();
          reply.raw.writeHead(200, { "content-type": "text/event-stream" });
          reply.raw.write(': hello\n\nid: 1\nevent: vm.state\ndata: {"a":1}\n\n');
          reply.raw.write("id: 2\r\ndata: line one\r\ndata: line two\r\n\r\n");
          reply.raw.end("data: no id\n\n");
        });
        app.get("/v1/test/refused", async () => {
          throw new CorralError(ErrorCodes.NOT_FOUND, "no VM named web");
        });
      },
    });
    await using client = new ApiClient({ socket: daemon.listening.socket });
    const events = [];
    for await (const event of client.events("/v1/test/stream")) events.push(event);
    expect(events).toEqual([
      { id: "1", event: "vm.state", data: '{"a":1}' },
      { id: "2", event: "message", data: "line one\nline two" },
      { id: "2", event: "message", data: "no id" },
    ]);
    const refused = await client
      .events("/v1/test/refused")
      .next()
      .catch((error) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({
      status: 404,
      code: ErrorCodes.NOT_FOUND,
      summary: "no VM named web",
    });
  });

  it("ends quietly when its signal fires", async () => {
    await using daemon = await startTestDaemon({
      routes: (app) => {
        app.get("/v1/test/forever", (_request, reply) => {
          reply.hijack();
          reply.raw.writeHead(200, { "content-type": "text/event-stream" });
          reply.raw.write("data: first\n\n");
        });
      },
    });
    await using client = new ApiClient({ socket: daemon.listening.socket });
    const controller = new AbortController();
    const seen: string[] = [];
    for await (const event of client.events("/v1/test/forever", { signal: controller.signal })) {
      seen.push(event.data);
      controller.abort();
    }
    expect(seen).toEqual(["first"]);
  });
});
