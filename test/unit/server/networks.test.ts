// /v1/networks where networks are unavailable (the daemon has no NetworkService): every route
// says why, 503; bodies are still checked first. The routes with a real service, in a network
// namespace, are in test/integration/network-routes.test.ts.

import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { http, startTestDaemon, type TestDaemon } from "../../helpers/http.ts";

let daemon: TestDaemon;
let socket: { socket: string };

beforeAll(async () => {
  const unavailable = new CorralError(
    ErrorCodes.NETWORK_UNAVAILABLE,
    "corral's networks: networks are unavailable on this host: corral is not running as root",
  );
  daemon = await startTestDaemon({ networks: unavailable });
  socket = { socket: daemon.listening.socket };
});

afterAll(async () => {
  await daemon?.[Symbol.asyncDispose]();
});

describe("/v1/networks without networks", () => {
  it("answers 503 with the reason on every route", async () => {
    for (const [method, path, body] of [
      ["GET", "/v1/networks"],
      ["GET", "/v1/networks/corral0"],
      ["POST", "/v1/networks", { name: "lab" }],
      ["DELETE", "/v1/networks/lab"],
    ] as const) {
      const answer = await http(socket, { method, path, body });
      expect(answer.status, `${method} ${path}`).toBe(503);
      expect(answer.json).toMatchObject({
        code: ErrorCodes.NETWORK_UNAVAILABLE,
        message: expect.stringContaining("not running as root"),
      });
    }
  });

  it("checks bodies first: 400 naming the field", async () => {
    const answer = await http(socket, {
      method: "POST",
      path: "/v1/networks",
      body: { name: "Lab!", nat: "yes" },
    });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    expect(JSON.stringify(answer.json)).toMatch(/name/);
    const extra = await http(socket, {
      method: "POST",
      path: "/v1/networks",
      body: { name: "lab", colour: "blue" },
    });
    expect(extra.status).toBe(400);
  });

  it("documents the routes in a valid OpenAPI document", async () => {
    const answer = await http(socket, { path: "/openapi.json" });
    const document = answer.json as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(document.paths["/v1/networks"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(Object.keys(document.paths["/v1/networks/{name}"] ?? {}).sort()).toEqual([
      "delete",
      "get",
    ]);
    await SwaggerParser.validate(structuredClone(document) as never);
  });
});
