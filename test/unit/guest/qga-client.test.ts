// The QGA client against the real qemu-ga on the host (test/helpers/host-qga.ts): what the host
// can show stands in for the guest (its os-release, host name, files in a temporary folder).

import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { hostname, release } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Deadline } from "../../../src/deadline.ts";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { QgaClient } from "../../../src/guest/qga-client.ts";
import { FILE_READ_CHUNK_BYTES } from "../../../src/guest/qga-files.ts";
import { posixExecRequest } from "../../../src/guest/qga-posix.ts";
import { QgaError } from "../../../src/guest/qga-protocol.ts";
import { type HostQga, startHostQga } from "../../helpers/host-qga.ts";

let qga: HostQga;
let client: QgaClient;

const deadline = (timeout = 20_000) => new Deadline("qga test", { timeout }, timeout);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
/** The agent's open file descriptors: a handle left open shows here. */
const agentFds = () => readdirSync(`/proc/${qga.pid()}/fd`).length;
const isRunning = (pid: number) => existsSync(`/proc/${pid}`);

beforeEach(async () => {
  qga = await startHostQga();
  client = await QgaClient.connect(qga.open, deadline());
});

afterEach(async () => {
  client?.close();
  await qga.dispose();
});

async function rejection(promise: Promise<unknown>): Promise<CorralError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(CorralError);
  return error as CorralError;
}

describe("the protocol", () => {
  it("puts a dirty line in step: a stale reply, garbage and half a request before the client", async () => {
    client.close();
    const dirty = await qga.open(deadline());
    // The agent answers the first request and complains about the garbage before the client
    // syncs; the half request is what the client's 0xFF must flush.
    dirty.write('{"execute":"guest-info"}\n]]] not json\n{"execute":"guest-pi');
    await sleep(100);
    client = await QgaClient.connect(async () => dirty, deadline());
    expect(await client.hostName(deadline())).toBe(hostname());
    expect((await client.info(deadline())).version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("answers ping and info, and tells which commands the agent has enabled", async () => {
    await client.ping(deadline());
    const info = await client.info(deadline());
    expect(info.supportedCommands).toContainEqual({
      name: "guest-exec",
      enabled: true,
      successResponse: true,
    });
    expect(info.supportedCommands).toContainEqual({
      name: "guest-shutdown",
      enabled: false,
      successResponse: false,
    });
    const capabilities = await client.capabilities(deadline());
    expect(capabilities.version).toBe(info.version);
    expect(capabilities.commands.has("guest-exec")).toBe(true);
    expect(capabilities.commands.has("guest-shutdown")).toBe(false);
    expect(capabilities.execCwd).toBe(false); // no released qemu-ga takes one
  });

  it("fails an unknown command with the agent's class and message, and goes on", async () => {
    const error = await rejection(client.execute("guest-no-such-command", undefined, deadline()));
    expect(error).toBeInstanceOf(QgaError);
    expect(error.code).toBe(ErrorCodes.GUEST_AGENT_ERROR);
    expect((error as QgaError).agentClass).toBe("CommandNotFound");
    expect(error.message).toContain("guest-no-such-command");
    await client.ping(deadline());
  });

  it("runs calls made at once one after the other, each with its own reply", async () => {
    const calls = Array.from({ length: 12 }, (_, i) =>
      i % 3 === 0
        ? client
            .exec({ path: "echo", args: [`call ${i}`] }, deadline())
            .then((r) => r.stdout.toString())
        : i % 3 === 1
          ? client.hostName(deadline())
          : client.ping(deadline()).then(() => "pong"),
    );
    expect(await Promise.all(calls)).toEqual(
      Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0 ? `call ${i}\n` : i % 3 === 1 ? hostname() : "pong",
      ),
    );
  });

  it("gets back in step after a deadline whose reply comes late", async () => {
    const agent = qga.pid();
    process.kill(agent, "SIGSTOP");
    try {
      const error = await rejection(client.hostName(deadline(300)));
      expect(error.code).toBe(ErrorCodes.TIMEOUT);
      expect(error.message).toContain("did not answer guest-get-host-name");
    } finally {
      process.kill(agent, "SIGCONT");
    }
    // The late host name reply comes first: the sync drops it.
    const info = await client.info(deadline());
    expect(info.supportedCommands.length).toBeGreaterThan(10);
  });

  it("fails a call in flight when the agent dies, then reconnects to a new agent", async () => {
    const running = rejection(client.exec({ path: "sleep", args: ["30"] }, deadline()));
    await sleep(300);
    await qga.kill();
    const error = await running;
    expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    // Killed while the status call waited for its reply or between two polls: the same.
    expect(error.message).toMatch(/^guest-exec-status: the guest agent connection closed/);
    expect(error.message).toContain("is left running");

    const down = await rejection(client.ping(deadline()));
    expect(down.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect(down.message).toContain("cannot open the guest agent's channel");

    await qga.start();
    await client.ping(deadline());
    // The new agent does not know the old pid: collecting it is dropped, exec works.
    const result = await client.exec({ path: "echo", args: ["again"] }, deadline());
    expect(result.stdout.toString()).toBe("again\n");
  });
});

describe("exec", () => {
  it("returns stdout and stderr apart, and the exit code", async () => {
    const result = await client.exec(
      { path: "sh", args: ["-c", "echo out; echo err >&2; exit 3"] },
      deadline(),
    );
    expect(result).toMatchObject({ exitCode: 3, signal: undefined });
    expect(result.stdout.toString()).toBe("out\n");
    expect(result.stderr.toString()).toBe("err\n");
    expect(result.stdoutTruncated || result.stderrTruncated).toBe(false);
  });

  it("feeds stdin, and gives /dev/null without input", async () => {
    const input = randomBytes(1024 * 1024);
    const hashed = await client.exec({ path: "sha256sum", input }, deadline());
    expect(hashed.stdout.toString()).toBe(`${sha256(input)}  -\n`);
    const empty = await client.exec({ path: "cat" }, deadline(5000));
    expect(empty.stdout.length).toBe(0);
  });

  it("reports a signal as 128 + its number", async () => {
    const result = await client.exec({ path: "sh", args: ["-c", "kill -9 $$"] }, deadline());
    expect(result).toMatchObject({ exitCode: 137, signal: 9 });
  });

  it("keeps 16 MiB of a stream and says it dropped the rest", async () => {
    const script = [
      "yes 0123456789abcdef | head -c 17825792", // 17 MiB on stdout
      "yes fedcba9876543210 | head -c 3145728 >&2", // 3 MiB on stderr
    ].join("; ");
    const result = await client.exec({ path: "sh", args: ["-c", script] }, deadline(60_000));
    const pattern = (text: string, bytes: number) =>
      Buffer.from(`${text}\n`.repeat(Math.ceil(bytes / 17))).subarray(0, bytes);
    expect(result.stdoutTruncated).toBe(true);
    expect(result.stdout.length).toBe(16 * 1024 * 1024);
    expect(result.stdout.equals(pattern("0123456789abcdef", 16 * 1024 * 1024))).toBe(true);
    expect(result.stderrTruncated).toBe(false);
    expect(result.stderr.equals(pattern("fedcba9876543210", 3145728))).toBe(true);
  });

  it("fails on a missing program with the agent's message; through sh it is exit 127", async () => {
    const error = await rejection(client.exec({ path: "/nonexistent/program" }, deadline()));
    expect(error).toBeInstanceOf(QgaError);
    expect((error as QgaError).description).toContain("Failed to execute child process");
    const viaShell = await client.exec(posixExecRequest({ argv: ["no-such-program"] }), deadline());
    expect(viaShell.exitCode).toBe(127);
    expect(viaShell.stderr.toString()).toContain("no-such-program: not found");
  });

  it("replaces the environment with env; posixExecRequest adds to it and changes directory", async () => {
    const replaced = await client.exec({ path: "env", env: { FOO: "bar" } }, deadline());
    expect(replaced.stdout.toString()).toBe("FOO=bar\n");

    const sub = join(qga.dir, "sub dir");
    mkdirSync(sub);
    const request = posixExecRequest({
      argv: ["sh", "-c", 'pwd; echo "$FOO|$QUOTE"; [ -n "$PATH" ] && echo has-path'],
      cwd: sub,
      env: { FOO: "bar baz", QUOTE: "it's $HOME" },
    });
    const added = await client.exec(request, deadline());
    expect(added.stdout.toString()).toBe(`${sub}\nbar baz|it's $HOME\nhas-path\n`);

    const nowhere = join(qga.dir, "missing");
    const missing = await client.exec(
      posixExecRequest({ argv: ["true"], cwd: nowhere }),
      deadline(),
    );
    expect(missing.exitCode).toBe(2); // dash's status for a failed cd
    expect(missing.stderr.toString()).toContain(`can't cd to ${nowhere}`);
  });

  it("refuses cwd where the agent has none, rather than dropping it", async () => {
    const error = await rejection(client.exec({ path: "pwd", cwd: "/tmp" }, deadline()));
    expect(error.code).toBe(ErrorCodes.UNSUPPORTED);
    expect(error.message).toContain("posixExecRequest");
  });

  it("leaves a program running past the deadline, and collects it later", async () => {
    const error = await rejection(client.exec({ path: "sleep", args: ["30"] }, deadline(300)));
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    const pid = Number(/guest pid (\d+)/.exec(error.message)?.[1]);
    expect(error.message).toContain("is left running");
    expect(isRunning(pid)).toBe(true);
    process.kill(pid, "SIGKILL");
    // Gone from /proc once the agent has waited for it.
    for (let waited = 0; isRunning(pid) && waited < 4000; waited += 20) await sleep(20);
    await client.exec({ path: "true" }, deadline());
    // The status was collected: the agent no longer knows the pid.
    const forgotten = await rejection(client.execute("guest-exec-status", { pid }, deadline()));
    expect((forgotten as QgaError).description).toContain("Invalid parameter 'pid'");
  });

  it("has timeout(1) end the program at the deadline with killAtDeadline", async () => {
    const error = await rejection(
      client.exec({ path: "sleep", args: ["30"] }, deadline(500), { killAtDeadline: true }),
    );
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(error.message).toContain("runs under timeout(1)");
    const pid = Number(/guest pid (\d+)/.exec(error.message)?.[1]);
    for (let waited = 0; isRunning(pid) && waited < 4000; waited += 50) await sleep(50);
    expect(isRunning(pid)).toBe(false);
  });

  it("passes a command that ends in time through timeout(1) unchanged", async () => {
    const result = await client.exec(
      posixExecRequest({ argv: ["sh", "-c", "echo ok; exit 4"] }),
      deadline(),
      { killAtDeadline: true },
    );
    expect(result.exitCode).toBe(4);
    expect(result.stdout.toString()).toBe("ok\n");
  });
});

describe("files", () => {
  it("writes and reads back a few MiB, chunk by chunk, byte for byte", async () => {
    const path = join(qga.dir, "data.bin");
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const fds = agentFds();
    expect(await client.writeFile(path, data, deadline())).toBe(data.length);
    expect(sha256(readFileSync(path))).toBe(sha256(data));
    const back = await client.readFile(path, deadline());
    expect(sha256(back)).toBe(sha256(data));
    expect(agentFds()).toBe(fds);
  });

  it("writes from an iterable, and appends", async () => {
    const path = join(qga.dir, "parts.txt");
    await client.writeFile(
      path,
      ["one\n", "two\n"].map((s) => Buffer.from(s)),
      deadline(),
    );
    await client.writeFile(path, Buffer.from("three\n"), deadline(), { append: true });
    expect((await client.readFile(path, deadline())).toString()).toBe("one\ntwo\nthree\n");
    await client.writeFile(path, new Uint8Array(0), deadline());
    expect(readFileSync(path).length).toBe(0);
  });

  it("closes the handle when the reader stops early or the file is too large", async () => {
    const path = join(qga.dir, "big.bin");
    writeFileSync(path, randomBytes(3 * 1024 * 1024));
    const fds = agentFds();
    for await (const chunk of client.readFileChunks(path, deadline())) {
      expect(chunk.length).toBe(FILE_READ_CHUNK_BYTES);
      break;
    }
    expect(agentFds()).toBe(fds);
    const error = await rejection(client.readFile(path, deadline(), { maxBytes: 1_500_000 }));
    expect(error.code).toBe(ErrorCodes.OUTPUT_TOO_LARGE);
    expect(agentFds()).toBe(fds);
  });

  it("fails on a missing file with the agent's message", async () => {
    const error = await rejection(client.readFile(join(qga.dir, "missing"), deadline()));
    expect(error).toBeInstanceOf(QgaError);
    expect((error as QgaError).description).toContain("No such file or directory");
    const denied = await rejection(
      client.writeFile(join(qga.dir, "no/dir/x"), Buffer.from("x"), deadline()),
    );
    expect(denied).toBeInstanceOf(QgaError);
  });
});

describe("guest information", () => {
  it("reads the OS, host name, interfaces, filesystems and users", async () => {
    const os = await client.osInfo(deadline());
    const osRelease = readFileSync("/etc/os-release", "utf8");
    expect(osRelease).toContain(`ID=${os.id}`);
    expect(os.kernelRelease).toBe(release());
    expect(await client.hostName(deadline())).toBe(hostname());
    const interfaces = await client.networkInterfaces(deadline());
    const lo = interfaces.find((nic) => nic.name === "lo");
    expect(lo?.ipAddresses).toContainEqual({
      ipAddress: "127.0.0.1",
      ipAddressType: "ipv4",
      prefix: 8,
    });
    expect(lo?.statistics?.rxBytes).toBeGreaterThan(0);
    const filesystems = await client.fsInfo(deadline());
    expect(filesystems.find((fs) => fs.mountpoint === "/")?.totalBytes).toBeGreaterThan(0);
    expect(Array.isArray(await client.users(deadline()))).toBe(true);
  });
});

it("connects through a stream that is already closed with a clear error", async () => {
  const stream = connect(join(qga.dir, "qga.sock"));
  await new Promise((resolve) => stream.once("connect", resolve));
  stream.destroy();
  const error = await rejection(QgaClient.connect(async () => stream, deadline()));
  expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
});
