// /v1/templates through real HTTP against the whole daemon (store, catalog, routes) on its unix
// socket and on TCP: listing, adding (the YAML file appears), validation naming the field,
// conflicts, removal, the token, and the routes in the OpenAPI document.

import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTemporaryDaemon, type TemporaryDaemon } from "../../helpers/daemon.ts";
import { http } from "../../helpers/http.ts";

let running: TemporaryDaemon;
const small = { name: "small", os: "linux", image: "debian-12", cpus: 1, memoryMiB: 128 };

beforeAll(async () => {
  running = await startTemporaryDaemon({
    tcp: { host: "127.0.0.1", port: 0 },
    prepare: async ({ templatesDir }) => {
      await mkdir(templatesDir, { recursive: true });
      await writeFile(
        join(templatesDir, "lab.yaml"),
        "name: lab\nos: linux\nimage: debian-12\ncpus: 2\nmemoryMiB: 1024\n",
      );
      await writeFile(join(templatesDir, "broken.yaml"), "name: broken\nos: beos\n");
    },
  });
});

afterAll(async () => {
  await running?.[Symbol.asyncDispose]();
});

const call = (method: string, path: string, body?: unknown) =>
  http(running.socket, { method, path, body });

describe("GET /v1/templates", () => {
  it("lists the built-in templates and the user's valid files, by name", async () => {
    const answer = await call("GET", "/v1/templates");
    expect(answer.status).toBe(200);
    const list = answer.json as { name: string; source: string }[];
    expect(list.map(({ name, source }) => `${name}:${source}`)).toEqual([
      "lab:user",
      "linux-default:builtin",
      "linux-microvm:builtin",
      "windows-default:builtin",
    ]);
  });

  it("shows one template; an unknown one is 404 naming the known ones, a bad name 400", async () => {
    expect(await call("GET", "/v1/templates/linux-microvm")).toMatchObject({
      status: 200,
      json: {
        name: "linux-microvm",
        source: "builtin",
        template: { machineType: "microvm", image: "debian-12" },
      },
    });
    expect(await call("GET", "/v1/templates/nope")).toMatchObject({
      status: 404,
      json: {
        code: "CORRAL_NOT_FOUND",
        message:
          'no template named "nope" (known: lab, linux-default, linux-microvm, windows-default)',
        details: [],
      },
    });
    expect(await call("GET", "/v1/templates/Big_One")).toMatchObject({
      status: 400,
      json: { code: "CORRAL_INVALID_ARGUMENT", message: expect.stringMatching(/^params\/name /) },
    });
  });
});

describe("POST /v1/templates", () => {
  it("adds a template, writes its YAML file, and 409s a second add of the name", async () => {
    const answer = await call("POST", "/v1/templates", small);
    expect(answer.status).toBe(201);
    const file = join(running.config.templatesDir, "small.yaml");
    expect(answer.json).toMatchObject({ name: "small", source: "user", file, template: small });
    expect(readFileSync(file, "utf8")).toContain("name: small\n");
    expect(await call("POST", "/v1/templates", small)).toMatchObject({
      status: 409,
      json: { code: "CORRAL_CONFLICT", message: expect.stringContaining('"small" already exists') },
    });
    expect(
      await call("POST", "/v1/templates", { ...small, name: "windows-default" }),
    ).toMatchObject({ status: 409, json: { code: "CORRAL_CONFLICT" } });
  });

  it("refuses a bad body with 400 naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ ...small, name: "bad1", cpus: 0 }, "body/cpus must be >= 1"],
      [{ ...small, name: "bad2", memroyMiB: 1 }, "body/memroyMiB is not a known field"],
      [{ name: "bad3", os: "linux", cpus: 1 }, "body must have required property 'memoryMiB'"],
      [
        { ...small, name: "bad4", machineType: "pc", firmware: "uefi" },
        "invalid template: body/firmware: uefi needs machineType q35 (this template has pc)",
      ],
      [{ ...small, name: "bad5", max: { cpus: 0 } }, "body/max/cpus must be >= 1"],
      [[1, 2], "body must be object"],
    ];
    for (const [body, message] of cases) {
      const answer = await call("POST", "/v1/templates", body);
      expect(answer.status, message).toBe(400);
      expect(answer.json, message).toMatchObject({ code: "CORRAL_INVALID_ARGUMENT", message });
    }
    expect(existsSync(join(running.config.templatesDir, "bad4.yaml"))).toBe(false);
  });
});

describe("DELETE /v1/templates/{name}", () => {
  it("removes a user template and its file; a built-in one is 409; then 404", async () => {
    await call("POST", "/v1/templates", { ...small, name: "gone" });
    const file = join(running.config.templatesDir, "gone.yaml");
    expect(existsSync(file)).toBe(true);
    expect(await call("DELETE", "/v1/templates/gone")).toMatchObject({
      status: 200,
      json: { name: "gone", source: "user" },
    });
    expect(existsSync(file)).toBe(false);
    expect((await call("DELETE", "/v1/templates/gone")).status).toBe(404);
    expect(await call("DELETE", "/v1/templates/linux-default")).toMatchObject({
      status: 409,
      json: { code: "CORRAL_CONFLICT", message: expect.stringContaining("built-in") },
    });
  });
});

describe("over TCP", () => {
  it("needs the bearer token", async () => {
    const tcp = running.daemon.tcp;
    if (!tcp) throw new Error("the daemon listens on TCP");
    const token = readFileSync(join(running.config.stateDir, "api-token"), "utf8").trim();
    expect(await http({ tcp }, { path: "/v1/templates" })).toMatchObject({
      status: 401,
      json: { code: "CORRAL_UNAUTHORIZED" },
    });
    const answer = await http(
      { tcp },
      { path: "/v1/templates/lab", headers: { authorization: `Bearer ${token}` } },
    );
    expect(answer).toMatchObject({ status: 200, json: { name: "lab" } });
  });
});

describe("GET /openapi.json", () => {
  it("describes the template routes with their schemas, and stays a valid document", async () => {
    const doc = (await call("GET", "/openapi.json")).json as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    await SwaggerParser.validate(structuredClone(doc) as never);
    expect(Object.keys(doc.paths["/v1/templates"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/v1/templates/{name}"] ?? {}).sort()).toEqual(["delete", "get"]);
    expect(doc.components.schemas).toHaveProperty("TemplateView");
    expect(doc.components.schemas).toHaveProperty("Template");
  });
});
