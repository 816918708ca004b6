// The guest routes and the serial console on real VMs, over real HTTP and WebSockets on a real
// daemon's unix socket. Through the backdoor shell: one-shot exec (streams apart, 127, a timeout
// that kills), WebSocket exec (streams apart and in order, stdin, signals, a pty and its size, a
// dropped connection killing the command), files (8 MiB round trip by sha256, refusals that
// leave nothing), the CLI's exec and cp (files and folders), and the console (the boot replayed, keys and output
// both ways). Through qemu-ga (forced by a template): one-shot exec, files, the CLI's exec
// without streaming, and the WebSocket refused as it cannot stream.

import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../src/errors.ts";
import type { Machine } from "../../src/machine/machine.ts";
import { runCli, temporaryDir } from "../helpers/cli.ts";
import { CLEAN_ENV } from "../helpers/cli-daemon.ts";
import { byteRequest } from "../helpers/http-bytes.ts";
import { type ManagerDaemon, qemuPidsUnder, startManagerDaemon } from "../helpers/manager.ts";
import { openTestSocket, streamText } from "../helpers/web-socket.ts";

let manager: ManagerDaemon;

/** The daemon's own Machine of VM `name`, to check what the guest saw. */
function daemonMachine(name: string): Machine {
  const machine = manager.daemon.manager.vms.machineOf(name);
  if (!machine) throw new Error(`the daemon has no machine for ${name}`);
  return machine;
}

beforeAll(async () => {
  manager = await startManagerDaemon();
  const created = await manager.api("POST", "/v1/vms", { name: "web", cpus: 1, memoryMiB: 512 });
  expect(created.status, created.text).toBe(201);
  const idle = await manager.api("POST", "/v1/vms", { name: "idle", start: false });
  expect(idle.status, idle.text).toBe(201);
  const template = await manager.api("POST", "/v1/templates", {
    name: "agent-only",
    os: "linux",
    image: "debian-12",
    cpus: 1,
    memoryMiB: 512,
    guestChannel: "qga",
  });
  expect(template.status, template.text).toBe(201);
  const agent = await manager.api("POST", "/v1/vms", { name: "agent", template: "agent-only" });
  expect(agent.status, agent.text).toBe(201);
});

afterAll(async () => {
  await manager?.api("POST", "/v1/vms/web/stop", { force: true });
  await manager?.api("POST", "/v1/vms/agent/stop", { force: true });
  const stateDir = manager?.stateDir;
  await manager?.[Symbol.asyncDispose]();
  if (stateDir) expect(qemuPidsUnder(stateDir)).toEqual([]);
});

interface ExecJson {
  exitCode: number;
  stdout: string;
  stderr: string;
  isTimedOut: boolean;
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

async function execute(body: object, vm = "web"): Promise<ExecJson> {
  const answer = await manager.api("POST", `/v1/vms/${vm}/guest/execute`, body);
  expect(answer.status, answer.text).toBe(200);
  return answer.json as ExecJson;
}

/** Whether a process whose command line holds `marker` runs in the guest. */
async function runsInGuest(marker: string): Promise<boolean> {
  return (await execute({ argv: ["pgrep", "-f", marker], timeoutMs: 20_000 })).exitCode === 0;
}

describe("POST /v1/vms/{id}/guest/execute", () => {
  it("answers the exit code with stdout and stderr apart; 127 for a missing program", async () => {
    expect(await execute({ command: "echo out; echo err >&2; exit 3" })).toMatchObject({
      exitCode: 3,
      stdout: "out\n",
      stderr: "err\n",
      isTimedOut: false,
    });
    expect(
      await execute({ argv: ["cat"], stdin: Buffer.from("in").toString("base64") }),
    ).toMatchObject({
      exitCode: 0,
      stdout: "in",
    });
    expect(await execute({ argv: ["/no/such/program"] })).toMatchObject({ exitCode: 127 });
  });

  it("refuses a VM at rest with 409 CORRAL_MACHINE_NOT_RUNNING, as the console does", async () => {
    for (const [method, path] of [
      ["POST", "/v1/vms/idle/guest/execute"],
      ["GET", "/v1/vms/idle/guest/ping"],
    ] as const) {
      const answer = await manager.api(
        method,
        path,
        method === "POST" ? { argv: ["true"] } : undefined,
      );
      expect(answer.status, path).toBe(409);
      expect(answer.json).toMatchObject({
        code: ErrorCodes.MACHINE_NOT_RUNNING,
        message: 'VM "idle" is created: guest operations need it running (corral vm start idle)',
      });
    }
  });

  it("kills a command at its timeout, in the guest, and says so", async () => {
    const marker = `sleep 31${randomBytes(2).readUInt16BE()}`;
    expect(await execute({ command: marker, timeoutMs: 1000 })).toMatchObject({ isTimedOut: true });
    expect(await runsInGuest(marker)).toBe(false);
  });
});

describe("GET /v1/vms/{id}/guest/execute (WebSocket)", () => {
  const open = () => openTestSocket(manager.socket, "/v1/vms/web/guest/execute");

  it("streams interleaved stdout and stderr apart, each in order", async () => {
    const ws = await open();
    ws.send({ command: "for i in $(seq 1 200); do echo out$i; echo err$i >&2; done" });
    expect(await ws.waitFor((frame) => frame.type === "exit")).toEqual({
      type: "exit",
      exitCode: 0,
    });
    const lines = (prefix: string) =>
      Array.from({ length: 200 }, (_, i) => `${prefix}${i + 1}\n`).join("");
    expect(streamText(ws.frames, "stdout")).toBe(lines("out"));
    expect(streamText(ws.frames, "stderr")).toBe(lines("err"));
    expect((await ws.closed).code).toBe(1000);
  });

  it("echoes stdin through cat until eof", async () => {
    const ws = await open();
    ws.send({ argv: ["cat"] });
    ws.send({ type: "stdin", data: Buffer.from("ping\n").toString("base64") });
    await ws.waitFor(() => streamText(ws.frames, "stdout") === "ping\n");
    ws.send({ type: "stdin", data: Buffer.from("pong\n").toString("base64") });
    await ws.waitFor(() => streamText(ws.frames, "stdout") === "ping\npong\n");
    ws.send({ type: "eof" });
    expect(await ws.waitFor((frame) => frame.type === "exit")).toMatchObject({ exitCode: 0 });
  });

  it("ends sleep with a signal", async () => {
    const ws = await open();
    ws.send({ command: "echo started; exec sleep 300" });
    await ws.waitFor(() => streamText(ws.frames, "stdout") === "started\n");
    ws.send({ type: "signal", signal: "TERM" });
    expect(await ws.waitFor((frame) => frame.type === "exit")).toMatchObject({ exitCode: 143 });
  });

  it("gives a pty whose size follows resize frames", async () => {
    const ws = await open();
    ws.send({ command: "stty size; read line; stty size", tty: true, columns: 80, rows: 24 });
    await ws.waitFor(() => streamText(ws.frames, "stdout").includes("24 80"));
    ws.send({ type: "resize", columns: 132, rows: 43 });
    ws.send({ type: "stdin", data: Buffer.from("\r").toString("base64") });
    await ws.waitFor(() => streamText(ws.frames, "stdout").includes("43 132"));
    expect(await ws.waitFor((frame) => frame.type === "exit")).toMatchObject({ exitCode: 0 });
  });

  it("kills the command when the connection drops", async () => {
    const marker = `sleep 32${randomBytes(2).readUInt16BE()}`;
    const ws = await open();
    ws.send({ command: `echo started $$; ${marker}` });
    await ws.waitFor(() => streamText(ws.frames, "stdout").startsWith("started"));
    ws.socket.terminate();
    // The backdoor shell runs one command at a time: this one gets its turn once the dropped
    // one has ended, and fails with a timeout if it never does.
    expect(await runsInGuest(marker)).toBe(false);
  });
});

describe("/v1/vms/{id}/guest/files", () => {
  const files = (path: string) => `/v1/vms/web/guest/files?path=${encodeURIComponent(path)}`;

  it("round-trips 8 MiB, checked by sha256", async () => {
    const bytes = randomBytes(8 * 1024 * 1024);
    const put = await byteRequest(manager.socket, {
      method: "PUT",
      path: `${files("/root/big.bin")}&mode=0600`,
      headers: { "x-corral-sha256": sha256(bytes) },
      body: bytes,
    });
    expect(put.status, put.body.toString()).toBe(200);
    expect(put.json).toEqual({
      path: "/root/big.bin",
      sizeBytes: bytes.length,
      sha256: sha256(bytes),
    });
    expect(
      (await execute({ command: "sha256sum /root/big.bin; stat -c %a /root/big.bin" })).stdout,
    ).toBe(`${sha256(bytes)}  /root/big.bin\n600\n`);
    const got = await byteRequest(manager.socket, { method: "GET", path: files("/root/big.bin") });
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(sha256(bytes));
    expect(got.trailers["x-corral-sha256"]).toBe(sha256(bytes));
    const head = await byteRequest(manager.socket, {
      method: "HEAD",
      path: files("/root/big.bin"),
    });
    expect(head.headers).toMatchObject({
      "x-corral-type": "file",
      "x-corral-size": String(bytes.length),
      "x-corral-mode": "0600",
    });
    expect(
      (await byteRequest(manager.socket, { method: "DELETE", path: files("/root/big.bin") }))
        .status,
    ).toBe(204);
    expect(
      (await byteRequest(manager.socket, { method: "HEAD", path: files("/root/big.bin") })).status,
    ).toBe(404);
  });

  it("leaves nothing behind for a wrong sha256, and refuses relative and '..' paths", async () => {
    await execute({ command: "mkdir -p /srv/up && echo old > /srv/up/keep.txt" });
    const put = await byteRequest(manager.socket, {
      method: "PUT",
      path: files("/srv/up/keep.txt"),
      headers: { "x-corral-sha256": "f".repeat(64) },
      body: Buffer.from("new"),
    });
    expect(put.status).toBe(422);
    expect(put.json).toMatchObject({ code: ErrorCodes.CHECKSUM_MISMATCH });
    expect((await execute({ command: "ls -A /srv/up; cat /srv/up/keep.txt" })).stdout).toBe(
      "keep.txt\nold\n",
    );
    for (const path of ["srv/up/keep.txt", "/srv/up/../up/keep.txt"]) {
      const answer = await byteRequest(manager.socket, { method: "GET", path: files(path) });
      expect(answer.status, path).toBe(400);
    }
    expect(
      (await byteRequest(manager.socket, { method: "GET", path: files("/srv/none") })).status,
    ).toBe(404);
  });
});

describe("corral vm exec and cp", () => {
  const cli = (...args: string[]) => runCli(args, { ...CLEAN_ENV, CORRAL_SOCKET: manager.socket });

  it("runs a command with its exit code, and copies a file both ways", async () => {
    expect(
      await cli("vm", "exec", "web", "--", "sh", "-c", "hostname; echo e >&2; exit 5"),
    ).toMatchObject({
      code: 5,
      stdout: "web\n",
      stderr: "e\n",
    });
    const dir = temporaryDir("corral-cp-");
    const bytes = randomBytes(300_000);
    writeFileSync(join(dir, "up.bin"), bytes);
    expect((await cli("vm", "cp", join(dir, "up.bin"), "web:/tmp/")).code).toBe(0);
    expect((await execute({ command: "sha256sum < /tmp/up.bin" })).stdout).toBe(
      `${sha256(bytes)}  -\n`,
    );
    expect((await cli("vm", "cp", "web:/tmp/up.bin", join(dir, "down.bin"))).code).toBe(0);
    expect(sha256(readFileSync(join(dir, "down.bin")))).toBe(sha256(bytes));
  });

  it("copies a folder both ways as a tar archive", async () => {
    const dir = temporaryDir("corral-cp-folder-");
    mkdirSync(join(dir, "site", "a b"), { recursive: true });
    writeFileSync(join(dir, "site", "index.html"), "<h1>hi</h1>\n");
    writeFileSync(join(dir, "site", "a b", "data.bin"), randomBytes(70_000));
    expect((await cli("vm", "cp", join(dir, "site"), "web:/srv/site")).code).toBe(0);
    expect(
      (await execute({ command: "cd /srv/site && find . -type f | sort && cat index.html" }))
        .stdout,
    ).toBe("./a b/data.bin\n./index.html\n<h1>hi</h1>\n");

    const back = await cli("vm", "cp", "web:/srv/site", join(dir, "back"));
    expect(back.code, back.stderr).toBe(0);
    for (const file of ["index.html", "a b/data.bin"]) {
      expect(sha256(readFileSync(join(dir, "back", file))), file).toBe(
        sha256(readFileSync(join(dir, "site", file))),
      );
    }
  });
});

describe("through qemu-ga", () => {
  it("runs one-shot commands, moves files, and refuses to stream", async () => {
    expect(await manager.api("GET", "/v1/vms/agent/guest/capabilities")).toMatchObject({
      json: { channel: "qga", streaming: false },
    });
    expect(await execute({ command: "echo out; echo err >&2; exit 3" }, "agent")).toMatchObject({
      exitCode: 3,
      stdout: "out\n",
      stderr: "err\n",
    });
    expect(await execute({ argv: ["/no/such/program"] }, "agent")).toMatchObject({ exitCode: 127 });

    const bytes = randomBytes(1024 * 1024);
    const path = "/v1/vms/agent/guest/files?path=/root/one.bin";
    const put = await byteRequest(manager.socket, {
      method: "PUT",
      path,
      headers: { "x-corral-sha256": sha256(bytes) },
      body: bytes,
    });
    expect(put.status, put.body.toString()).toBe(200);
    const got = await byteRequest(manager.socket, { method: "GET", path });
    expect(sha256(got.body)).toBe(sha256(bytes));
    expect(got.trailers["x-corral-sha256"]).toBe(sha256(bytes));

    // A folder out as a tar archive; one in with a wrong sha256 unpacks nothing.
    await execute({ command: "mkdir -p /srv/f/sub && echo x > /srv/f/sub/x.txt" }, "agent");
    const folder = await byteRequest(manager.socket, {
      method: "GET",
      path: "/v1/vms/agent/guest/files?path=/srv/f",
    });
    expect(folder.headers["content-type"]).toBe("application/x-tar");
    expect(folder.trailers["x-corral-sha256"]).toBe(sha256(folder.body));
    expect(execFileSync("tar", ["-t"], { input: folder.body }).toString()).toMatch(
      /\.\/sub\/x\.txt/,
    );
    const wrong = await byteRequest(manager.socket, {
      method: "PUT",
      path: "/v1/vms/agent/guest/files?path=/srv/g&archive=tar",
      headers: { "x-corral-sha256": "0".repeat(64) },
      body: folder.body,
    });
    expect(wrong.status).toBe(422);
    expect(
      await execute(
        { command: "test -e /srv/g || echo none; ls -A /var/tmp | grep -c corral" },
        "agent",
      ),
    ).toMatchObject({ stdout: "none\n0\n" });

    const ws = await openTestSocket(manager.socket, "/v1/vms/agent/guest/execute");
    ws.send({ command: "true" });
    expect(await ws.waitFor((frame) => frame.type === "error")).toMatchObject({
      code: ErrorCodes.UNSUPPORTED,
      message: expect.stringContaining("its qga channel cannot stream"),
    });
    expect((await ws.closed).code).toBe(4501);

    const cli = await runCli(["vm", "exec", "agent", "--", "sh", "-c", "echo $((2 + 3)); exit 6"], {
      ...CLEAN_ENV,
      CORRAL_SOCKET: manager.socket,
    });
    expect(cli).toMatchObject({ code: 6, stdout: "5\n" });
  });
});

describe("GET /v1/vms/{id}/console", () => {
  it("replays the boot to a late client, then carries output and keys both ways", async () => {
    const console = await openTestSocket(manager.socket, "/v1/vms/web/console?replayBytes=262144");
    await console.waitForText("Reached target basic.target", { timeoutMs: 10_000 });
    const machine = daemonMachine("web");
    const seen = Buffer.concat(console.binary).length;
    await machine.succeed("echo from-the-guest > /dev/ttyS0");
    await console.waitForText("from-the-guest", { fromByte: seen });

    await machine.succeed("(timeout 30 head -n1 /dev/ttyS0 > /tmp/typed &)");
    await machine.succeed("sleep 0.5");
    console.socket.send("typed-on-the-console\r");
    await machine.waitUntilSucceeds("grep -qx typed-on-the-console /tmp/typed", {
      timeout: 20_000,
    });
    console.socket.close();
    expect((await console.closed).code).toBe(1005);
  });

  it("refuses a VM at rest with an error frame and 4409", async () => {
    const console = await openTestSocket(manager.socket, "/v1/vms/idle/console");
    expect(await console.waitFor((frame) => frame.type === "error")).toMatchObject({
      code: ErrorCodes.MACHINE_NOT_RUNNING,
      message: 'VM "idle" is created: its console needs it running (corral vm start idle)',
    });
    expect((await console.closed).code).toBe(4409);
  });
});
