// The guest's system routes over real HTTP in front of a fake guest: capabilities, ping, system
// info, processes and kill, health, shutdown, services, logs (filters, the event-logs alias, and
// following as server-sent events without repeats); and the OpenAPI document that lists them.

import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { parseSince } from "../../../src/server/routes/guest-logs.ts";
import { type FakeGuest, fakeGuest } from "../../helpers/fake-guest-ops.ts";
import { http, startTestDaemon, type TestDaemon } from "../../helpers/http.ts";
import { openEventStream } from "../../helpers/manager.ts";

let daemon: TestDaemon;
let guest: FakeGuest;
let to: { socket: string };

beforeAll(async () => {
  guest = fakeGuest();
  daemon = await startTestDaemon({ logLevel: "silent", guests: async () => guest, logPollMs: 50 });
  to = { socket: daemon.listening.socket };
});

afterAll(async () => {
  await daemon?.[Symbol.asyncDispose]();
  rmSync(guest.root, { recursive: true, force: true });
});

const get = (path: string) => http(to, { path: `/v1/vms/web/guest/${path}` });

describe("the guest's system routes", () => {
  it("answers capabilities, ping, system info, processes and health", async () => {
    expect((await get("capabilities")).json).toEqual(guest.capabilities);
    expect((await get("ping")).json).toEqual({
      roundTripMs: expect.any(Number),
      channel: "backdoor",
    });
    expect((await get("system-info")).json).toMatchObject({
      os: { family: "linux", kernel: "6.1.0" },
      memory: { totalBytes: 2 ** 30 },
      interfaces: [{ name: "lo", mac: null }],
    });
    expect((await get("processes")).json).toEqual([
      { pid: 1, user: "root", command: "/sbin/init", cpuPercent: 0.5, rssBytes: 8 * 2 ** 20 },
    ]);
    expect((await get("health")).json).toMatchObject({ systemState: "running", load1: 0.1 });
  });

  it("signals a process, TERM unless told", async () => {
    const child = spawn("sleep", ["60"]);
    const ended = new Promise((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    const path = `/v1/vms/web/guest/processes/${child.pid}?signal=SIGINT`;
    expect((await http(to, { method: "DELETE", path })).status).toBe(204);
    expect(await ended).toBe("SIGINT");
    const bad = await http(to, {
      method: "DELETE",
      path: "/v1/vms/web/guest/processes/1?signal=x;y",
    });
    expect(bad.status).toBe(400);
  });

  it("shuts the guest down (202), powerdown unless told", async () => {
    const plain = await http(to, { method: "POST", path: "/v1/vms/web/guest/shutdown" });
    expect(plain).toMatchObject({ status: 202, json: { mode: "powerdown" } });
    const reboot = await http(to, {
      method: "POST",
      path: "/v1/vms/web/guest/shutdown",
      body: { mode: "reboot" },
    });
    expect(reboot.json).toEqual({ mode: "reboot" });
  });

  it("lists services and starts, stops and restarts one", async () => {
    expect((await get("services")).json).toEqual(guest.services_);
    const stopped = await http(to, { method: "POST", path: "/v1/vms/web/guest/services/ssh/stop" });
    expect(stopped.json).toMatchObject({ name: "ssh.service", state: "inactive" });
    const unknown = await http(to, {
      method: "POST",
      path: "/v1/vms/web/guest/services/nope/start",
    });
    expect(unknown.json).toMatchObject({ code: ErrorCodes.UNIT_NOT_FOUND });
    const badAction = await http(to, {
      method: "POST",
      path: "/v1/vms/web/guest/services/ssh/kick",
    });
    expect(badAction.status).toBe(400);
  });
});

describe("GET /v1/vms/{id}/guest/logs", () => {
  it("filters by since, unit, priority and limit, also as event-logs", async () => {
    const now = Date.now();
    guest.logEntries.push(
      {
        time: new Date(now - 3_600_000).toISOString(),
        priority: 6,
        source: "CRON",
        unit: "cron.service",
        message: "old",
      },
      { time: new Date(now - 1000).toISOString(), priority: 3, source: "app", message: "failed" },
      { time: new Date(now - 500).toISOString(), priority: 6, source: "app", message: "fine" },
    );
    const messages = async (query: string, path = "logs") =>
      ((await get(`${path}?${query}`)).json as { message: string }[]).map((e) => e.message);
    expect(await messages("since=10m")).toEqual(["failed", "fine"]);
    expect(await messages("unit=cron.service")).toEqual(["old"]);
    expect(await messages("identifier=app")).toEqual(["failed", "fine"]);
    expect(await messages("priority=err")).toEqual(["failed"]);
    expect(await messages("priority=3&limit=5", "event-logs")).toEqual(["failed"]);
    expect(await messages("limit=1")).toEqual(["fine"]);
    expect(await messages(`since=${new Date(now - 800).toISOString()}`)).toEqual(["fine"]);
    for (const query of ["since=yesterday", "priority=9", "limit=0", "follow=maybe"]) {
      expect((await get(`logs?${query}`)).status, query).toBe(400);
    }
  });

  it("follows new entries as server-sent events, none twice", async () => {
    guest.logEntries.length = 0;
    const time = new Date().toISOString();
    guest.logEntries.push({ time, priority: 6, source: "app", message: "first" });
    const stream = openEventStream(to.socket, "/v1/vms/web/guest/logs?follow=true&identifier=app");
    expect(await stream.status).toBe(200);
    await stream.waitFor((event) => (event.data as { message: string }).message === "first");
    // Same time as the last one sent: new all the same.
    guest.logEntries.push({ time, priority: 6, source: "app", message: "second" });
    guest.logEntries.push({
      time: new Date(Date.now() + 10).toISOString(),
      priority: 6,
      source: "app",
      message: "third",
    });
    await stream.waitFor((event) => (event.data as { message: string }).message === "third");
    await new Promise((resolve) => setTimeout(resolve, 300));
    stream.close();
    expect(
      stream.events.map((event) => [event.event, (event.data as { message: string }).message]),
    ).toEqual([
      ["log", "first"],
      ["log", "second"],
      ["log", "third"],
    ]);
  });

  it("reads ages and ISO times", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(parseSince("30s", now).toISOString()).toBe("2026-01-01T11:59:30.000Z");
    expect(parseSince("2h", now).toISOString()).toBe("2026-01-01T10:00:00.000Z");
    expect(parseSince("2026-01-01T11:00:00+01:00").toISOString()).toBe("2026-01-01T10:00:00.000Z");
    expect(() => parseSince("2026-13-45")).toThrow("is not a time");
  });
});

describe("GET /openapi.json", () => {
  it("lists every guest route and is a valid OpenAPI document", async () => {
    const doc = (await http(to, { path: "/openapi.json" })).json as {
      paths: Record<string, Record<string, unknown>>;
    };
    const paths = Object.keys(doc.paths).filter((path) => path.includes("/guest/"));
    expect(paths.sort()).toEqual(
      [
        "capabilities",
        "event-logs",
        "execute",
        "files",
        "health",
        "logs",
        "ping",
        "processes",
        "processes/{pid}",
        "services",
        "services/{name}/{action}",
        "shutdown",
        "system-info",
      ].map((path) => `/v1/vms/{id}/guest/${path}`),
    );
    expect(Object.keys(doc.paths["/v1/vms/{id}/guest/files"] ?? {}).sort()).toEqual([
      "delete",
      "get",
      "head",
      "put",
    ]);
    expect(Object.keys(doc.paths["/v1/vms/{id}/guest/execute"] ?? {}).sort()).toEqual([
      "get",
      "post",
    ]);
    await SwaggerParser.validate(structuredClone(doc) as never);
  });
});
