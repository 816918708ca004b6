// The daemon's HTTP foundation through real requests on its unix socket: health, the one error
// shape for CorralErrors, validation failures and unknown routes, and the OpenAPI document.

import { connect } from "node:net";
import SwaggerParser from "@apidevtools/swagger-parser";
import { Type } from "typebox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorralError, ErrorCodes, TimeoutError } from "../../../src/errors.ts";
import { packageVersion } from "../../../src/package-version.ts";
import { errorResponses } from "../../../src/server/schemas.ts";
import { http, startTestDaemon, type TestDaemon } from "../../helpers/http.ts";

let daemon: TestDaemon;
let socket: { socket: string };

beforeAll(async () => {
  daemon = await startTestDaemon({
    routes: (app) => {
      app.get(
        "/v1/test/conflict",
        { schema: { response: { 200: Type.Object({}), ...errorResponses } } },
        async () => {
          throw new CorralError(ErrorCodes.CONFLICT, "vm web is running: stop it first", {
            details: ["state: running", "since: 10 s"],
          });
        },
      );
      app.get(
        "/v1/test/timeout",
        { schema: { response: { 200: Type.Object({}), ...errorResponses } } },
        async () => {
          throw new TimeoutError("waiting for running: gave up after 5 s");
        },
      );
      app.get(
        "/v1/test/bug",
        { schema: { response: { 200: Type.Object({}), ...errorResponses } } },
        async () => {
          throw new Error("secret internals at /srv/corral/thing.ts:12");
        },
      );
      app.post(
        "/v1/test/vms/:id",
        {
          schema: {
            params: Type.Object({ id: Type.String({ pattern: "^[a-z]+$" }) }),
            querystring: Type.Object({ wait: Type.Optional(Type.Boolean()) }),
            body: Type.Object(
              { cpus: Type.Integer({ minimum: 1 }), name: Type.Optional(Type.String()) },
              { additionalProperties: false },
            ),
            response: { 200: Type.Object({ cpus: Type.Integer() }), ...errorResponses },
          },
        },
        async (request) => ({ cpus: request.body.cpus }),
      );
    },
  });
  socket = { socket: daemon.listening.socket };
});

afterAll(async () => {
  await daemon?.[Symbol.asyncDispose]();
});

describe("GET /v1/health", () => {
  it("answers over the unix socket with the version and the uptime", async () => {
    const answer = await http(socket, { path: "/v1/health" });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({
      status: "ok",
      version: packageVersion(),
      uptimeS: expect.any(Number),
      limits: { maxVms: 64, maxUploadBytes: 4 * 2 ** 30 },
    });
  });
});

describe("errors", () => {
  it("a CorralError is { code, message, details } with its code's status", async () => {
    const answer = await http(socket, { path: "/v1/test/conflict" });
    expect(answer.status).toBe(409);
    expect(answer.headers["content-type"]).toMatch(/^application\/json/);
    expect(answer.json).toEqual({
      code: "CORRAL_CONFLICT",
      message: "vm web is running: stop it first",
      details: ["state: running", "since: 10 s"],
    });
    expect(await http(socket, { path: "/v1/test/timeout" })).toMatchObject({
      status: 504,
      json: {
        code: "CORRAL_TIMEOUT",
        message: "waiting for running: gave up after 5 s",
        details: [],
      },
    });
  });

  it("any other error is a 500 with a stable code and nothing of its message or stack", async () => {
    const answer = await http(socket, { path: "/v1/test/bug" });
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual({
      code: "CORRAL_INTERNAL",
      message: expect.stringMatching(/^internal error in corral serve \(request \S+\)/),
      details: [],
    });
    expect(answer.text).not.toMatch(/secret|thing\.ts|at /);
  });

  it("a body that fails its schema is 400 naming the field", async () => {
    const post = (body: unknown, path = "/v1/test/vms/web") =>
      http(socket, { method: "POST", path, body });
    expect(await post({ cpus: 0 })).toMatchObject({
      status: 400,
      json: { code: "CORRAL_INVALID_ARGUMENT", message: "body/cpus must be >= 1", details: [] },
    });
    expect((await post({})).json).toMatchObject({
      code: "CORRAL_INVALID_ARGUMENT",
      message: "body must have required property 'cpus'",
    });
    expect((await post({ cpus: 1, memroyMiB: 512 })).json).toMatchObject({
      code: "CORRAL_INVALID_ARGUMENT",
      message: "body/memroyMiB is not a known field",
    });
    expect((await post({ cpus: 1 }, "/v1/test/vms/Web1")).json).toMatchObject({
      code: "CORRAL_INVALID_ARGUMENT",
      message: 'params/id must match pattern "^[a-z]+$"',
    });
    expect((await post({ cpus: 1 }, "/v1/test/vms/web?wait=maybe")).json).toMatchObject({
      code: "CORRAL_INVALID_ARGUMENT",
      message: "querystring/wait must be boolean",
    });
    expect(await post({ cpus: 2 })).toMatchObject({ status: 200, json: { cpus: 2 } });
  });

  it("a body that is not JSON is 400 CORRAL_INVALID_ARGUMENT", async () => {
    for (const headers of [
      { "content-type": "application/json" },
      { "content-type": "text/plain" },
    ]) {
      const answer = await http(socket, {
        method: "POST",
        path: "/v1/test/vms/web",
        headers,
        body: "{cpus:",
      });
      expect(answer.status, JSON.stringify(headers)).toBe(400);
      expect(answer.json).toMatchObject({ code: "CORRAL_INVALID_ARGUMENT", details: [] });
    }
  });

  it("an unknown route, or a known one with another method, is 404 CORRAL_NOT_FOUND", async () => {
    for (const [method, path] of [
      ["GET", "/v1/nope"],
      ["DELETE", "/v1/health"],
      ["GET", "/health"],
    ] as const) {
      const answer = await http(socket, { method, path });
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.json).toEqual({
        code: "CORRAL_NOT_FOUND",
        message: `no route ${method} ${path}: the API is under /v1, and GET /openapi.json lists every route`,
        details: [],
      });
    }
  });
});

describe("errors raised before any route runs", () => {
  it("a URL the router cannot decode, or a path parameter too long, is 400 in the API's shape", async () => {
    for (const path of [
      "/v1/test/vms/%zz",
      "/v1/test/vms/%ff%fe",
      `/v1/test/vms/${"a".repeat(500)}`,
    ]) {
      const answer = await http(socket, { method: "POST", path, body: { cpus: 1 } });
      expect(answer.status, path).toBe(400);
      expect(answer.json, path).toMatchObject({ code: "CORRAL_INVALID_ARGUMENT", details: [] });
    }
  });

  it("a request Node's HTTP parser refuses is 400 in the API's shape, then the connection closes", async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const client = connect(socket.socket);
      let text = "";
      client.on("data", (chunk) => {
        text += chunk.toString();
      });
      client.on("error", reject);
      client.on("close", () => resolve(text));
      client.write("GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4))).toEqual({
      code: "CORRAL_INVALID_ARGUMENT",
      message: expect.stringMatching(/^malformed HTTP request \(HPE_\w+\): /),
      details: [],
    });
  });
});

describe("GET /openapi.json", () => {
  it("is a valid OpenAPI 3 document listing every route with its schemas", async () => {
    const answer = await http(socket, { path: "/openapi.json" });
    expect(answer.status).toBe(200);
    const doc = answer.json as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    // The parser checks the document against the OpenAPI 3 JSON schema and its own rules
    // (declared path parameters, resolvable references); it takes a copy.
    await SwaggerParser.validate(structuredClone(doc) as never);
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/v1/health",
      "/v1/test/bug",
      "/v1/test/conflict",
      "/v1/test/timeout",
      "/v1/test/vms/{id}",
    ]);
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const status of ["4XX", "5XX"]) {
          expect(operation.responses[status], `${method} ${path} ${status}`).toMatchObject({
            content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
          });
        }
      }
    }
    const post = doc.paths["/v1/test/vms/{id}"]?.post as unknown as {
      requestBody: { content: { "application/json": { schema: unknown } } };
      parameters: { in: string; name: string }[];
    };
    expect(post.requestBody.content["application/json"].schema).toMatchObject({
      required: ["cpus"],
      properties: { cpus: { type: "integer", minimum: 1 } },
    });
    expect(post.parameters.map(({ in: where, name }) => `${where}:${name}`).sort()).toEqual([
      "path:id",
      "query:wait",
    ]);
  });

  it("has a docs page whose assets the daemon serves itself (no network needed)", async () => {
    const page = await http(socket, { path: "/docs/" });
    expect(page.status).toBe(200);
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect(asset).not.toMatch(/^(https?:)?\/\//);
      const answer = await http(socket, { path: new URL(asset ?? "", "http://x/docs/").pathname });
      expect(answer.status, asset).toBe(200);
    }
  });
});
