// The exec routes over real HTTP and WebSockets on a daemon's unix socket, in front of a fake
// guest (real bash processes on the host): one-shot answers (streams apart, 127, timeout,
// base64), the WebSocket protocol (streams apart and in order, stdin, signals, bad frames, a
// dropped connection killing the command, detach), and a channel that cannot stream.

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { type FakeGuest, fakeGuest } from "../../helpers/fake-guest-ops.ts";
import { http, startTestDaemon, type TestDaemon } from "../../helpers/http.ts";
import { openTestSocket, streamText } from "../../helpers/web-socket.ts";

let daemon: TestDaemon;
let guest: FakeGuest;
let plain: FakeGuest;
let to: { socket: string };

beforeAll(async () => {
  guest = fakeGuest();
  plain = fakeGuest({ channel: "qga", streaming: false, interactiveStdin: false, signals: false });
  daemon = await startTestDaemon({
    logLevel: "silent",
    guests: async (id) => {
      if (id === "web") return guest;
      if (id === "plain") return plain;
      throw new CorralError(ErrorCodes.NOT_FOUND, `no VM named "${id}"`);
    },
  });
  to = { socket: daemon.listening.socket };
});

afterAll(async () => {
  await daemon?.[Symbol.asyncDispose]();
  for (const fake of [guest, plain]) rmSync(fake.root, { recursive: true, force: true });
});

const execute = (body: unknown, vm = "web") =>
  http(to, { method: "POST", path: `/v1/vms/${vm}/guest/execute`, body });

const pgrep = (marker: string) =>
  spawnSync("pgrep", ["-f", marker], { encoding: "utf8" }).stdout.trim();

describe("POST /v1/vms/{id}/guest/execute", () => {
  it("answers with the exit code and stdout and stderr apart", async () => {
    const answer = await execute({ command: "echo out; echo err >&2; exit 3" });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({
      exitCode: 3,
      stdout: "out\n",
      stderr: "err\n",
      encoding: "utf8",
      isTimedOut: false,
      durationMs: expect.any(Number),
    });
  });

  it("runs argv with env, cwd and stdin", async () => {
    const answer = await execute({
      argv: ["bash", "-c", 'echo "$GREETING $(pwd | tail -c 5)"; cat'],
      env: { GREETING: "hello" },
      cwd: "/",
      stdin: Buffer.from("from stdin").toString("base64"),
    });
    expect(answer.json).toMatchObject({
      exitCode: 0,
      stdout: expect.stringMatching(/^hello .*\nfrom stdin$/),
    });
  });

  it("answers a missing program as exit code 127, not an error", async () => {
    const answer = await execute({ argv: ["/nonexistent/program", "x"] });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({
      exitCode: 127,
      stderr: expect.stringContaining("No such file"),
    });
  });

  it("kills a command at its timeout and says so", async () => {
    const answer = await execute({ command: "sleep 30", timeoutMs: 300 });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ isTimedOut: true });
    expect((answer.json as { durationMs: number }).durationMs).toBeLessThan(10_000);
  });

  it("sends output that is not UTF-8 as base64", async () => {
    const answer = await execute({ command: "printf '\\xff\\xfe'; echo ok >&2" });
    expect(answer.json).toMatchObject({ encoding: "base64", stdout: "//4=", stderr: "b2sK" });
  });

  it("refuses both or neither of command and argv, bad stdin, an unknown field", async () => {
    for (const body of [
      { command: "true", argv: ["true"] },
      {},
      { command: "cat", stdin: "not base64!" },
      { command: "true", shell: "zsh" },
    ]) {
      const answer = await execute(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    }
    expect((await execute({ command: "true" }, "nope")).status).toBe(404);
  });

  it("tells a plain GET to upgrade", async () => {
    const answer = await http(to, { path: "/v1/vms/web/guest/execute" });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ message: expect.stringContaining("WebSocket") });
  });
});

describe("GET /v1/vms/{id}/guest/execute (WebSocket)", () => {
  const open = (vm = "web") => openTestSocket(to.socket, `/v1/vms/${vm}/guest/execute`);

  it("streams stdout and stderr apart, each in order, then the exit code", async () => {
    const ws = await open();
    ws.send({
      command: "for i in $(seq 1 50); do echo out$i; echo err$i >&2; done; exit 7",
    });
    const exit = await ws.waitFor((frame) => frame.type === "exit");
    expect(exit).toEqual({ type: "exit", exitCode: 7 });
    const numbers = Array.from({ length: 50 }, (_, i) => i + 1);
    expect(streamText(ws.frames, "stdout")).toBe(numbers.map((i) => `out${i}\n`).join(""));
    expect(streamText(ws.frames, "stderr")).toBe(numbers.map((i) => `err${i}\n`).join(""));
    expect(await ws.closed).toEqual({ code: 1000, reason: "exited" });
  });

  it("forwards stdin, sent even before the command started, until eof", async () => {
    const ws = await open();
    ws.send({ argv: ["cat"] });
    ws.send({ type: "stdin", data: Buffer.from("hello ").toString("base64") });
    ws.send({ type: "stdin", data: Buffer.from("world\n").toString("base64") });
    await ws.waitFor(() => streamText(ws.frames, "stdout") === "hello world\n");
    ws.send({ type: "eof" });
    expect(await ws.waitFor((frame) => frame.type === "exit")).toMatchObject({ exitCode: 0 });
  });

  it("sends a signal to the command", async () => {
    const ws = await open();
    ws.send({ command: "echo started; exec sleep 30" });
    await ws.waitFor(() => streamText(ws.frames, "stdout") === "started\n");
    ws.send({ type: "signal", signal: "SIGTERM" });
    expect(await ws.waitFor((frame) => frame.type === "exit", 5000)).toMatchObject({
      exitCode: 143,
    });
  });

  it("kills the command when the client drops the connection, unless detached", async () => {
    const marker = `corral-drop-${randomBytes(4).toString("hex")}`;
    const ws = await open();
    ws.send({ command: `echo started; exec -a ${marker} sleep 60` });
    await ws.waitFor(() => streamText(ws.frames, "stdout") === "started\n");
    expect(pgrep(marker)).not.toBe("");
    ws.socket.terminate();
    await expect.poll(() => pgrep(marker), { timeout: 5000 }).toBe("");

    const kept = `corral-detach-${randomBytes(4).toString("hex")}`;
    const detached = await open();
    detached.send({ command: `echo started; exec -a ${kept} sleep 60`, detach: true });
    await detached.waitFor(() => streamText(detached.frames, "stdout") === "started\n");
    detached.socket.terminate();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const pid = pgrep(kept);
    expect(pid).not.toBe("");
    process.kill(Number(pid), "SIGKILL");
  });

  it("ends the session with an error frame and a 44xx close for a bad frame", async () => {
    const cases: [string | Buffer, string][] = [
      ["not json", "the first frame is not JSON"],
      [JSON.stringify({ command: "true", argv: ["x"] }), "exactly one of command"],
      [
        JSON.stringify({ command: "true", colour: "red" }),
        "the first frame/colour is not a known field",
      ],
      [JSON.stringify({ command: 5 }), "the first frame/command"],
      [Buffer.from([1, 2, 3]), "the first frame is binary"],
    ];
    for (const [frame, message] of cases) {
      const ws = await open();
      ws.socket.send(frame);
      expect(await ws.waitFor((f) => f.type === "error")).toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: expect.stringContaining(message),
      });
      expect(await ws.closed).toEqual({ code: 4400, reason: ErrorCodes.INVALID_ARGUMENT });
    }

    const marker = `corral-bad-${randomBytes(4).toString("hex")}`;
    const ws = await open();
    ws.send({ command: `echo started; exec -a ${marker} sleep 60` });
    await ws.waitFor(() => streamText(ws.frames, "stdout") === "started\n");
    ws.send({ type: "shout" });
    expect(await ws.waitFor((f) => f.type === "error")).toMatchObject({
      message: 'a frame has type "shout": known types are stdin, eof, signal, resize',
    });
    expect((await ws.closed).code).toBe(4400);
    await expect.poll(() => pgrep(marker), { timeout: 5000 }).toBe("");
  });

  it("says so when the VM does not exist or its channel cannot stream or has no pty", async () => {
    const missing = await open("nope");
    missing.send({ command: "true" });
    expect(await missing.waitFor((f) => f.type === "error")).toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
    expect((await missing.closed).code).toBe(4404);

    const noStreaming = await open("plain");
    noStreaming.send({ command: "true" });
    expect(await noStreaming.waitFor((f) => f.type === "error")).toMatchObject({
      code: ErrorCodes.UNSUPPORTED,
      message: expect.stringContaining("its qga channel cannot stream"),
    });
    expect(await noStreaming.closed).toEqual({ code: 4501, reason: ErrorCodes.UNSUPPORTED });

    const noPty = await open();
    noPty.send({ command: "true", tty: true });
    expect(await noPty.waitFor((f) => f.type === "error")).toMatchObject({
      message: expect.stringContaining("no pseudo-terminal"),
    });
  });
});
