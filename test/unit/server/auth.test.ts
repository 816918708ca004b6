// The bearer token: made 0600 on first use and read back after; required over TCP (constant-time
// compare), never over the unix socket.

import { chmodSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { loadOrCreateToken, tokenPath } from "../../../src/server/auth.ts";
import { temporaryDir } from "../../helpers/cli.ts";
import { http, startTestDaemon } from "../../helpers/http.ts";

describe("loadOrCreateToken", () => {
  it("creates the token 0600 (its new folders 0700) and reads the same one back", async () => {
    const state = join(temporaryDir("corral-token-"), "state", "corral");
    const token = await loadOrCreateToken(state);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(tokenPath(state)).mode & 0o777).toBe(0o600);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, "..")).mode & 0o777).toBe(0o700);
    expect(await loadOrCreateToken(state)).toBe(token);
    const again = await Promise.all([1, 2, 3].map(() => loadOrCreateToken(state)));
    expect(again).toEqual([token, token, token]);
  });

  it("gives every concurrent first start the same token", async () => {
    const state = temporaryDir("corral-token-");
    const tokens = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateToken(state)));
    expect(new Set(tokens).size).toBe(1);
  });

  it("refuses a token file that others can read, or that holds no token", async () => {
    const state = temporaryDir("corral-token-");
    await loadOrCreateToken(state);
    chmodSync(tokenPath(state), 0o644);
    await expect(loadOrCreateToken(state)).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining(`is readable by other users (mode 644): run chmod 600`),
    });
    writeFileSync(tokenPath(state), "\n", { mode: 0o600 });
    chmodSync(tokenPath(state), 0o600);
    await expect(loadOrCreateToken(state)).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining("holds no token"),
    });
  });
});

describe("over TCP", () => {
  const token = "a-test-token-that-is-long-enough-0123456789";

  it("requires the right bearer token on every route (401 without or with a wrong one)", async () => {
    await using daemon = await startTestDaemon({ token, tcp: { host: "127.0.0.1", port: 0 } });
    const tcp = { tcp: daemon.listening.tcp ?? { host: "", port: 0 } };
    expect(tcp.tcp.port).toBeGreaterThan(0);
    const bearer = (value: string) => ({ headers: { authorization: `Bearer ${value}` } });

    const missing = await http(tcp, { path: "/v1/health" });
    expect(missing.status).toBe(401);
    expect(missing.headers["www-authenticate"]).toBe('Bearer realm="corral"');
    expect(missing.json).toEqual({
      code: "CORRAL_UNAUTHORIZED",
      message:
        "this address needs Authorization: Bearer <token>; `corral serve token` prints the token",
      details: [],
    });
    for (const wrong of ["nope", `${token.slice(0, -1)}X`, `${token}X`, ""]) {
      const answer = await http(tcp, { path: "/v1/health", ...bearer(wrong) });
      expect(answer.status, wrong).toBe(401);
      expect(answer.json).toMatchObject({ code: "CORRAL_UNAUTHORIZED" });
    }
    expect(
      (await http(tcp, { path: "/v1/health", headers: { authorization: token } })).status,
    ).toBe(401);
    // Every route, including those that do not exist and the API document.
    for (const path of ["/v1/nope", "/openapi.json", "/docs/"]) {
      expect((await http(tcp, { path })).status, path).toBe(401);
    }

    expect(await http(tcp, { path: "/v1/health", ...bearer(token) })).toMatchObject({
      status: 200,
      json: { status: "ok" },
    });
    expect((await http(tcp, { path: "/v1/nope", ...bearer(token) })).status).toBe(404);
    // The unix socket needs no token.
    expect((await http({ socket: daemon.listening.socket }, { path: "/v1/health" })).status).toBe(
      200,
    );
  });

  it("refuses every request when the daemon has no token", async () => {
    await using daemon = await startTestDaemon({ tcp: { host: "127.0.0.1", port: 0 } });
    const tcp = { tcp: daemon.listening.tcp ?? { host: "", port: 0 } };
    const answer = await http(tcp, {
      path: "/v1/health",
      headers: { authorization: "Bearer anything" },
    });
    expect(answer.status).toBe(401);
  });
});
