// A fuzz pass over the whole daemon (store, templates and every route the OpenAPI document
// lists): more than a thousand malformed or random requests from a seeded generator. Every answer
// must be a client error or a success — never a 5xx, for creates of every template too (made with
// start: false) —, every error must be { code, message, details }, nothing may boot, and the
// daemon must still answer afterwards. The seed is printed;
// CORRAL_FUZZ_SEED=<n> repeats a run.

import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processesMentioning } from "../../helpers/cli.ts";
import { startTemporaryDaemon, type TemporaryDaemon } from "../../helpers/daemon.ts";
import {
  CREATED_PREFIX,
  fillPath,
  type JsonSchema,
  METHODS,
  type Operation,
  operationsOf,
  Random,
  randomPath,
  ValueMaker,
} from "../../helpers/fuzz-requests.ts";
import { http } from "../../helpers/http.ts";

const SEED = Number(process.env.CORRAL_FUZZ_SEED ?? 20_261_130);
const PARALLEL = 8;

interface Sent {
  what: string;
  /** The request is wrong whatever the daemon holds: only a 4xx is right. */
  mustFail: boolean;
  answer: { status: number; json: unknown; text: string };
}

let running: TemporaryDaemon;
let operations: Operation[];
let maker: ValueMaker;
const random = new Random(SEED);
const sent: Sent[] = [];

beforeAll(async () => {
  process.stdout.write(`fuzz seed ${SEED} (CORRAL_FUZZ_SEED=${SEED} repeats this run)\n`);
  running = await startTemporaryDaemon({ tcp: { host: "127.0.0.1", port: 0 } });
  const doc = (await http(running.socket, { path: "/openapi.json" })).json as {
    paths: Record<string, Record<string, unknown>>;
    components: { schemas: Record<string, JsonSchema> };
  };
  operations = operationsOf(doc);
  maker = new ValueMaker(random, doc.components.schemas);
});

afterAll(async () => {
  await running?.[Symbol.asyncDispose]();
});

/** Sends requests from `make` until `count` are answered, PARALLEL at a time. */
async function send(count: number, make: () => Promise<Sent>): Promise<void> {
  for (let done = 0; done < count; done += PARALLEL) {
    const batch = Array.from({ length: Math.min(PARALLEL, count - done) }, make);
    sent.push(...(await Promise.all(batch)));
  }
}

/** Bodies that could create a VM are made unable to boot it. */
function neverStarts(op: Operation, body: unknown): unknown {
  if (op.method === "POST" && op.path.startsWith("/v1/vms") && isObject(body)) {
    return { ...body, start: false };
  }
  return body;
}

async function fromSchema(): Promise<Sent> {
  const op = random.pick(operations);
  const path = fillPath(random, op.path, op.query);
  const valid = op.body ? maker.valid(op.body) : undefined;
  const body = op.body
    ? neverStarts(op, random.chance(0.8) ? maker.mutate(valid) : valid)
    : undefined;
  const answer = await request({ method: op.method, path, body });
  return { what: `${op.method} ${path} ${preview(body)}`, mustFail: false, answer };
}

async function badBody(): Promise<Sent> {
  const withBody = operations.filter((op) => op.body);
  const op = random.pick(withBody);
  const path = op.path.replace(/\{[^}]+\}/g, "nope");
  const [contentType, body] = random.pick<[string, string]>([
    ["application/json", "{"],
    ["application/json", '{"name": "x",}'],
    ["application/json", "nul"],
    ["application/json", ""],
    ["application/json", '{"__proto__": {"polluted": true}}'],
    ["application/json", '{"constructor": {"prototype": {"polluted": true}}}'],
    ["application/json", "[".repeat(100_000)],
    ["application/json", `"${"x".repeat(2 * 1024 * 1024)}"`],
    ["application/json", "\u0000\u0001\u0002"],
    // Fastify reads this as JSON whatever the charset: the body itself must be wrong.
    ["application/json; charset=utf-16", '{"name":"x","start":false,"cpus":"many"}'],
    ["text/plain", "name=x"],
    ["application/x-www-form-urlencoded", "name=x&cpus=2"],
    [
      "multipart/form-data; boundary=zz",
      "--zz\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--zz--",
    ],
    ["application/xml", "<vm/>"],
    ["", "{}"],
    ["application/json", "1e999999"],
  ]);
  const headers: Record<string, string> = contentType === "" ? {} : { "content-type": contentType };
  const answer = await request({ method: op.method, path, headers, body });
  return { what: `${op.method} ${path} [${contentType}] ${preview(body)}`, mustFail: true, answer };
}

async function junkPath(): Promise<Sent> {
  const method = random.pick(METHODS.filter((m) => m !== "HEAD"));
  const path = randomPath(random);
  const answer = await request({ method, path });
  return { what: `${method} ${path}`, mustFail: true, answer };
}

async function wrongMethod(): Promise<Sent> {
  const op = random.pick(operations);
  const declared = new Set(operations.filter((o) => o.path === op.path).map((o) => o.method));
  const method = random.pick(METHODS.filter((m) => !declared.has(m) && m !== "HEAD"));
  const path = op.path.replace(/\{[^}]+\}/g, "nope");
  const answer = await request({ method, path, body: random.chance(0.5) ? {} : undefined });
  return { what: `${method} ${path}`, mustFail: true, answer };
}

async function badToken(): Promise<Sent> {
  const op = random.pick(operations);
  const authorization = random.pick([
    undefined,
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer wrong-token",
    `Bearer ${"A".repeat(8000)}`,
    "bearer  ",
    "Bearer a b c",
    "Token xyz",
  ]);
  const path = fillPath(random, op.path, op.query);
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  const answer = await request({ method: op.method, path, headers, isTcp: true });
  return {
    what: `TCP ${op.method} ${path} authorization=${preview(authorization)}`,
    mustFail: true,
    answer,
  };
}

async function rawGarbage(): Promise<Sent> {
  const text = random.pick([
    "GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "POST /v1/templates HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "POST /v1/templates HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST /v1/templates HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    "GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
    "FOO /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n",
    "GET /v1/\u0000health HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
    "GARBAGE\r\n\r\n",
  ]);
  const answer = await rawRequest(text);
  return { what: `raw ${preview(text)}`, mustFail: true, answer };
}

interface FuzzRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent as is (a string) or as JSON (with its content type). */
  body?: unknown;
  /** TCP instead of the unix socket. */
  isTcp?: boolean;
}

/**
 * One request on its own connection (`Connection: close`), written as raw bytes: the daemon may
 * answer and close before a huge body is written, and the answer must still be read.
 */
function request({
  method,
  path,
  headers = {},
  body,
  isTcp,
}: FuzzRequest): Promise<Sent["answer"]> {
  const payload =
    body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const all: Record<string, string> = {
    host: "corral",
    connection: "close",
    ...(payload !== undefined &&
      typeof body !== "string" && { "content-type": "application/json" }),
    ...(payload !== undefined && { "content-length": String(Buffer.byteLength(payload)) }),
    ...headers,
  };
  const head = Object.entries(all)
    .map(([key, value]) => `${key}: ${value}\r\n`)
    .join("");
  return rawRequest(`${method} ${path} HTTP/1.1\r\n${head}\r\n${payload ?? ""}`, isTcp);
}

/**
 * Sends bytes as they are and reads the answer until the daemon closes the connection; an event
 * stream (which never ends by itself) is closed once its headers are in.
 */
function rawRequest(text: string, isTcp = false): Promise<Sent["answer"]> {
  return new Promise((resolve, reject) => {
    const tcp = running.daemon.tcp;
    const socket = isTcp && tcp ? connect(tcp.port, tcp.host) : connect(running.daemon.socket);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${preview(text)}`)));
    socket.on("data", (chunk) => {
      chunks.push(chunk);
      const head = Buffer.concat(chunks).toString("latin1").split("\r\n\r\n")[0] ?? "";
      if (/^content-type: *text\/event-stream/im.test(head)) socket.destroy();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // The daemon answered and closed while the rest of the body was still being written.
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
    });
    socket.on("close", () => {
      const raw = Buffer.concat(chunks).toString("latin1");
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
      const [head = "", ...rest] = raw.split("\r\n\r\n");
      let text = rest.join("\r\n\r\n");
      if (/transfer-encoding: *chunked/i.test(head)) text = unchunk(text);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status, json, text });
    });
    // Not end(): a client that half-closes may lose its answer; `Connection: close` ends it.
    socket.write(text);
  });
}

describe("fuzz", () => {
  it("answers more than 1,000 malformed or random requests with 4xx (or 2xx), never 5xx", async () => {
    const started = performance.now();
    await send(500, fromSchema);
    await send(200, badBody);
    await send(150, junkPath);
    await send(100, wrongMethod);
    await send(100, badToken);
    await send(60, rawGarbage);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(`fuzz: ${sent.length} requests in ${seconds} s (seed ${SEED})\n`);
    expect(sent.length).toBeGreaterThanOrEqual(1000);

    const described = ({ what, answer }: Sent) =>
      `${answer.status} ${preview(what)} → ${preview(answer.text)}`;
    // The one 5xx allowed: 503 CORRAL_NETWORK_UNAVAILABLE, the documented refusal of networks by
    // a daemon that runs without them (as this one does: no host networking in unit tests).
    const isNetworkRefusal = ({ answer }: Sent) =>
      answer.status === 503 &&
      (answer.json as { code?: unknown })?.code === "CORRAL_NETWORK_UNAVAILABLE";
    const wrong = sent.filter(
      (one) =>
        !(one.mustFail ? one.answer.status >= 400 : one.answer.status >= 200) ||
        (one.answer.status >= 500 && !isNetworkRefusal(one)),
    );
    expect(wrong.map(described)).toEqual([]);
    const refused = sent.filter(isNetworkRefusal).length;
    if (refused > 0) process.stdout.write(`fuzz: ${refused} answers were 503 (no networks)\n`);

    // An answer to HEAD has no body, errors included.
    const shapeless = sent.filter(
      ({ what, answer }) =>
        answer.status >= 400 && !isErrorBody(answer.json) && !/^(TCP )?HEAD /.test(what),
    );
    expect(shapeless.map(described)).toEqual([]);
    const failures = sent.filter(({ answer }) => answer.status >= 400).length;
    expect(failures / sent.length).toBeGreaterThan(0.8);
  });

  it("still answers afterwards, and booted nothing", async () => {
    expect(await http(running.socket, { path: "/v1/health" })).toMatchObject({
      status: 200,
      json: { status: "ok" },
    });
    expect(processesMentioning(running.config.stateDir)).toEqual([]);
    const vms = await http(running.socket, { path: "/v1/vms" });
    if (vms.status === 200) {
      for (const vm of vms.json as { name: string; state: string }[]) {
        expect(vm.name.startsWith(CREATED_PREFIX), vm.name).toBe(true);
        expect(vm.state, vm.name).not.toMatch(/^(starting|running|paused)$/);
      }
    }
  });
});

function isErrorBody(json: unknown): boolean {
  if (!isObject(json)) return false;
  const { code, message, details } = json as Record<string, unknown>;
  return (
    typeof code === "string" &&
    code.startsWith("CORRAL_") &&
    typeof message === "string" &&
    message !== "" &&
    Array.isArray(details) &&
    details.every((line) => typeof line === "string") &&
    Object.keys(json).length === 3
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 120 ? `${text.slice(0, 120)}… (${text.length} chars)` : text;
}

function unchunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const at = rest.indexOf("\r\n");
    const size = Number.parseInt(rest.slice(0, at), 16);
    if (at < 0 || !(size > 0)) return out;
    out += rest.slice(at + 2, at + 2 + size);
    rest = rest.slice(at + 2 + size + 2);
  }
}
