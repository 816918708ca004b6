// Plain HTTP requests for tests of `corral serve`, over a unix socket or TCP, with node:http (not
// corral's own client), and a daemon listening in a temporary folder.

import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BuildAppOptions, buildApp, type CorralApp } from "../../src/server/app.ts";
import type { ListenAddress } from "../../src/server/config.ts";
import { type Listening, listen } from "../../src/server/listen.ts";

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

export interface HttpRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent as is (a string) or as JSON. */
  body?: unknown;
}

/** Sends one request to the unix socket `to.socket` or to TCP `to.tcp`. */
export function http(
  to: { socket: string } | { tcp: ListenAddress },
  { method = "GET", path, headers = {}, body }: HttpRequest,
): Promise<HttpAnswer> {
  const payload =
    body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const allHeaders = {
    ...(payload !== undefined &&
      typeof body !== "string" && { "content-type": "application/json" }),
    ...headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method,
        path,
        headers: allHeaders,
        ...("socket" in to ? { socketPath: to.socket } : { host: to.tcp.host, port: to.tcp.port }),
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

export interface TestDaemon extends AsyncDisposable {
  app: CorralApp;
  listening: Listening;
  /** Holds the socket; removed on dispose. */
  dir: string;
}

/**
 * A daemon on a socket in a new temporary folder (and on TCP when asked), quiet; `routes` adds
 * routes before it listens. Disposing it closes it and removes the folder.
 */
export async function startTestDaemon(
  options: BuildAppOptions & {
    tcp?: ListenAddress;
    routes?: (app: CorralApp) => void | Promise<void>;
  } = {},
): Promise<TestDaemon> {
  const dir = await mkdtemp(join(tmpdir(), "corral-serve-"));
  const app = await buildApp({ logLevel: "silent", ...options });
  let listening: Listening;
  try {
    await options.routes?.(app);
    listening = await listen(app, { socket: join(dir, "corral.sock"), tcp: options.tcp });
  } catch (error) {
    await app.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    app,
    listening,
    dir,
    async [Symbol.asyncDispose]() {
      await listening.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
