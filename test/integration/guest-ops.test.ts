// The manager's guest operations on corral's Debian image, once through the backdoor shell and
// once through qemu-ga (forced), on one shared VM with both: the same assertions wherever both
// channels can (exit codes, stdout and stderr apart, 127, timeouts, env and cwd, stdin, users,
// file bytes by sha256, stat and remove, info, processes, a service, the journal, health), then
// streaming (backdoor only), the probe, and a shutdown through the guest.

import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Deadline } from "../../src/deadline.ts";
import { ErrorCodes } from "../../src/errors.ts";
import { Machine } from "../../src/machine/machine.ts";
import { openGuestOps } from "../../src/manager/guest/channel-probe.ts";
import type { GuestOps } from "../../src/manager/guest/guest-ops.ts";

let machine: Machine;
const channels: Record<"backdoor" | "qga", GuestOps> = {} as never;

const deadline = (timeoutMs = 120_000) =>
  new Deadline("guest-ops test", { timeout: timeoutMs }, timeoutMs);
const text = (bytes: Buffer) => bytes.toString("utf8");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function* chunksOf(bytes: Buffer, size = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

/** Resolves once `condition` holds, checking every 100 ms for at most `timeoutMs`. */
async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const started = performance.now();
  while (!(await condition())) {
    if (performance.now() - started > timeoutMs)
      throw new Error("the condition did not hold in time");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function readAll(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  machine = new Machine({ guestAgent: true });
  await machine.waitForUnit("multi-user.target", { timeout: 300_000 });
  channels.backdoor = await openGuestOps(machine, "backdoor", deadline());
  channels.qga = await openGuestOps(machine, "qga", deadline());
});

afterAll(async () => {
  await machine?.[Symbol.asyncDispose]();
});

describe.each(["backdoor", "qga"] as const)("through %s", (channel) => {
  const ops = () => channels[channel];

  it("declares what it can do", async () => {
    expect(ops().capabilities).toMatchObject({
      channel,
      os: "linux",
      streaming: channel === "backdoor",
      interactiveStdin: channel === "backdoor",
      pty: channel === "backdoor",
      signals: channel === "backdoor",
    });
    await ops().ping(deadline());
  });

  it("runs a command: exit code, stdout and stderr apart", async () => {
    const outcome = await ops().exec(
      { command: "echo out; echo err >&2; echo more; exit 3" },
      deadline(),
    );
    expect(outcome).toMatchObject({ exitCode: 3, isTimedOut: false, isStdoutTruncated: false });
    expect(text(outcome.stdout)).toBe("out\nmore\n");
    expect(text(outcome.stderr)).toBe("err\n");
  });

  it("passes argv words as they are, and runs as another user", async () => {
    const words = await ops().exec(
      { argv: ["printf", "%s|", "a b", "c'd", "$HOME", ""] },
      deadline(),
    );
    expect(text(words.stdout)).toBe("a b|c'd|$HOME||");
    const user = await ops().exec({ argv: ["id", "-un"], user: "nobody" }, deadline());
    expect(text(user.stdout)).toBe("nobody\n");
  });

  it("reports a missing program as exit status 127", async () => {
    const byArgv = await ops().exec({ argv: ["corral-no-such-program", "x"] }, deadline());
    expect(byArgv.exitCode).toBe(127);
    const byCommand = await ops().exec({ command: "corral-no-such-program" }, deadline());
    expect(byCommand.exitCode).toBe(127);
    expect(text(byCommand.stderr)).toMatch(/not found/);
  });

  it("kills a command at its timeout in the guest and says so", async () => {
    const marker = channel === "backdoor" ? "31.25" : "31.5";
    // [.] keeps the pattern from matching the shell that runs pgrep.
    const started = performance.now();
    const outcome = await ops().exec(
      { command: `echo started; sleep ${marker}; echo never`, timeoutMs: 2000 },
      deadline(),
    );
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(outcome).toMatchObject({ exitCode: 124, isTimedOut: true });
    expect(text(outcome.stdout)).toBe("started\n");
    const pattern = `sleep ${marker.replace(".", "[.]")}`;
    const left = await ops().exec({ command: `pgrep -f '${pattern}'` }, deadline());
    expect(left.exitCode).toBe(1);
  });

  it("adds env and changes directory", async () => {
    const outcome = await ops().exec(
      {
        command: `echo "$CORRAL_A|$PWD|\${PATH:+path}"`,
        env: { CORRAL_A: "x y 'z'" },
        cwd: "/etc",
      },
      deadline(),
    );
    expect(text(outcome.stdout)).toBe("x y 'z'|/etc|path\n");
    const missing = await ops().exec({ command: "true", cwd: "/corral/none" }, deadline());
    expect(missing.exitCode).toBe(2);
  });

  it("gives stdin given up front", async () => {
    const input = randomBytes(200_000);
    const outcome = await ops().exec(
      { command: "sha256sum | cut -c1-64", stdin: input },
      deadline(),
    );
    expect(text(outcome.stdout).trim()).toBe(sha256(input));
  });

  it("refuses bad requests at once", async () => {
    for (const request of [
      {},
      { command: "x", argv: ["x"] },
      { argv: [] },
      { command: "x", cwd: "etc" },
    ]) {
      await expect(ops().exec(request, deadline())).rejects.toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
      });
    }
  });

  it("writes and reads a file by sha256, with its mode and owner", async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const path = `/srv/corral-${channel}/data.bin`;
    const written = await ops().writeFile(
      path,
      chunksOf(bytes),
      { mode: 0o640, uid: 1, gid: 1, sha256: sha256(bytes) },
      deadline(),
    );
    expect(written).toEqual({ sizeBytes: bytes.length, sha256: sha256(bytes) });
    expect(await ops().stat(path, deadline())).toMatchObject({
      path,
      type: "file",
      sizeBytes: bytes.length,
      mode: 0o640,
      uid: 1,
      gid: 1,
    });
    const read = await readAll(ops().readFile(path, deadline()));
    expect(sha256(read)).toBe(sha256(bytes));
    const inGuest = await ops().exec({ argv: ["sha256sum", path] }, deadline());
    expect(text(inGuest.stdout).slice(0, 64)).toBe(sha256(bytes));
  });

  it("leaves nothing at the target when the sha256 does not match", async () => {
    const path = `/srv/corral-${channel}/wrong.bin`;
    await expect(
      ops().writeFile(path, chunksOf(Buffer.from("hello")), { sha256: "0".repeat(64) }, deadline()),
    ).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: /sha256/ });
    await expect(ops().stat(path, deadline())).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
    const left = await ops().exec({ command: `ls -A /srv/corral-${channel}` }, deadline());
    expect(text(left.stdout)).not.toMatch(/corral-upload/);
  });

  it("stats and removes files and folders", async () => {
    const dir = `/srv/corral-${channel}`;
    expect(await ops().stat(dir, deadline())).toMatchObject({ type: "directory" });
    await expect(ops().remove(dir, {}, deadline())).rejects.toMatchObject({
      code: ErrorCodes.CONFLICT,
    });
    await ops().remove(`${dir}/data.bin`, {}, deadline());
    await expect(ops().stat(`${dir}/data.bin`, deadline())).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
    await ops().remove(dir, { recursive: true }, deadline());
    await expect(ops().remove(dir, {}, deadline())).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
    await expect(ops().stat("/etc/../etc", deadline())).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await expect(readAll(ops().readFile("/etc", deadline()))).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await expect(readAll(ops().readFile("/corral-none", deadline()))).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
  });

  it("tells what the guest is", async () => {
    const info = await ops().systemInfo(deadline());
    const facts = text(
      (await ops().exec({ command: "hostname; nproc; uname -r" }, deadline())).stdout,
    ).split("\n");
    expect(info).toMatchObject({
      os: { family: "linux", name: "Debian GNU/Linux", version: "12", kernel: facts[2] },
      hostname: facts[0],
      cpus: Number(facts[1]),
    });
    expect(info.memory.totalBytes).toBeGreaterThan(256 * 1024 * 1024);
    expect(info.memory.availableBytes).toBeGreaterThan(0);
    expect(info.uptimeS).toBeGreaterThan(0);
    expect(info.filesystems).toContainEqual(
      expect.objectContaining({ mountpoint: "/", type: "ext4", totalBytes: expect.any(Number) }),
    );
    // QEMU's user-mode network, which corral images' start scripts give every VM.
    expect(info.interfaces).toContainEqual({
      name: "eth0",
      mac: "52:54:00:12:34:56",
      addresses: expect.arrayContaining(["10.0.2.15/24"]),
    });
    expect(info.interfaces).toContainEqual({
      name: "lo",
      mac: null,
      addresses: expect.arrayContaining(["127.0.0.1/8"]),
    });
  });

  it("lists processes with a known pid, and signals one", async () => {
    const started = await ops().exec(
      { command: "sleep 601 >/dev/null 2>&1 & echo $!" },
      deadline(),
    );
    const pid = Number(text(started.stdout));
    const processes = await ops().processes(deadline());
    expect(processes).toContainEqual(expect.objectContaining({ pid: 1, user: "root" }));
    expect(processes).toContainEqual(
      expect.objectContaining({ pid, user: "root", command: "sleep 601" }),
    );
    await ops().kill(pid, "TERM", deadline());
    await machine.waitUntilFails(`kill -0 ${pid}`, { timeout: 10_000 });
    await expect(ops().kill(pid, "TERM", deadline())).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
  });

  it("starts and stops a service, and finds its journal lines", async () => {
    const unit = `corral-test-${channel}.service`;
    await ops().writeFile(
      `/etc/systemd/system/${unit}`,
      chunksOf(Buffer.from("[Service]\nExecStart=/bin/sleep infinity\n")),
      {},
      deadline(),
    );
    await ops().exec({ command: "systemctl daemon-reload" }, deadline());
    const since = new Date(
      Number(text((await ops().exec({ command: "date +%s%3N" }, deadline())).stdout)),
    );
    expect(await ops().serviceAction(unit, "start", deadline())).toMatchObject({
      name: unit,
      state: "active",
    });
    expect(await ops().services(deadline())).toContainEqual(
      expect.objectContaining({ name: unit, state: "active" }),
    );
    expect(await ops().serviceAction(unit, "stop", deadline())).toMatchObject({
      state: "inactive",
    });
    await expect(
      ops().serviceAction("corral-none.service", "start", deadline()),
    ).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
    const tag = `corral-test-${channel}`;
    const word = randomBytes(6).toString("hex");
    await ops().exec({ argv: ["logger", "-t", tag, `hello ${word}`] }, deadline());
    const byTag = await ops().logs({ identifier: tag, since }, deadline());
    expect(byTag).toContainEqual(
      expect.objectContaining({ source: tag, message: `hello ${word}`, priority: 5 }),
    );
    const byUnit = await ops().logs({ unit, since, limit: 50 }, deadline());
    expect(byUnit.some((entry) => entry.message.includes("Started"))).toBe(true);
    const later = await ops().logs(
      { identifier: tag, since: new Date(Date.now() + 3_600_000) },
      deadline(),
    );
    expect(later).toEqual([]);
  });

  it("reports health", async () => {
    const health = await ops().health(deadline());
    expect(["running", "degraded", "starting"]).toContain(health.systemState);
    expect(health.load1).toEqual(expect.any(Number));
    expect(health.memoryAvailableBytes).toBeGreaterThan(0);
    expect(health.diskFreeBytes).toBeGreaterThan(0);
    expect(health.agentRoundTripMs).toBeGreaterThan(0);
  });
});

describe("streaming", () => {
  it("is refused through qemu-ga, by name", async () => {
    await expect(
      channels.qga.execStream({ command: "true" }, { onStdout() {}, onStderr() {} }, deadline()),
    ).rejects.toMatchObject({ code: ErrorCodes.UNSUPPORTED, message: /qemu-ga/ });
  });

  it("keeps stdout and stderr apart and in order, and echoes stdin", async () => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const running = await channels.backdoor.execStream(
      { command: "for i in 1 2 3; do echo o$i; echo e$i >&2; done; cat; echo end" },
      { onStdout: (chunk) => out.push(chunk), onStderr: (chunk) => err.push(chunk) },
      deadline(),
    );
    running.writeStdin(Buffer.from("typed\n"));
    running.closeStdin();
    expect(await running.exited).toMatchObject({ exitCode: 0 });
    expect(Buffer.concat(out).toString()).toBe("o1\no2\no3\ntyped\nend\n");
    expect(Buffer.concat(err).toString()).toBe("e1\ne2\ne3\n");
  });

  it("gives a pty whose size changes, and passes signals", async () => {
    const out: Buffer[] = [];
    const running = await channels.backdoor.execStream(
      {
        command: "stty size; trap 'stty size; exit 7' WINCH; echo ready; sleep 60 & wait",
        tty: true,
        columns: 100,
        rows: 30,
      },
      { onStdout: (chunk) => out.push(chunk), onStderr() {} },
      deadline(),
    );
    // The backdoor shell is busy with the command: its output says when it is ready.
    await until(() => Buffer.concat(out).toString().includes("ready"));
    running.resize(120, 40);
    expect(await running.exited).toMatchObject({ exitCode: 7 });
    expect(Buffer.concat(out).toString()).toMatch(/^30 100\r\nready\r\n40 120\r\n$/);
    const said: Buffer[] = [];
    const signalled = await channels.backdoor.execStream(
      { command: "trap 'echo term; exit 3' TERM; echo ready; sleep 60 & wait" },
      { onStdout: (chunk) => said.push(chunk), onStderr() {} },
      deadline(),
    );
    await until(() => Buffer.concat(said).toString().includes("ready"));
    signalled.signal("TERM");
    expect(await signalled.exited).toMatchObject({ exitCode: 3 });
  });
});

describe("channel choice", () => {
  it("takes the backdoor shell when it answers", async () => {
    expect((await openGuestOps(machine, "auto", deadline())).capabilities.channel).toBe("backdoor");
  });

  it("takes qemu-ga when the shell does not answer, and says so when neither does", async () => {
    await using bare = new Machine({
      guestAgent: true,
      kernelParams: ["systemd.mask=backdoor.service"],
    });
    await bare.start();
    const ops = await openGuestOps(bare, "auto", deadline(300_000));
    expect(ops.capabilities).toMatchObject({ channel: "qga", os: "linux" });
    // The agent goes away for good: stopped from outside its own cgroup, and masked.
    const stopping = await ops.exec(
      {
        command:
          "systemctl mask --runtime qemu-guest-agent && systemd-run --on-active=1 systemctl stop qemu-guest-agent",
      },
      deadline(),
    );
    expect(stopping).toMatchObject({ exitCode: 0 });
    await until(
      () =>
        ops.ping(deadline(2000)).then(
          () => false,
          () => true,
        ),
      60_000,
    );
    await expect(openGuestOps(bare, "auto", deadline(8000))).rejects.toMatchObject({
      code: ErrorCodes.UNSUPPORTED,
      message: /no guest channel: neither the backdoor shell nor qemu-ga answers/,
    });
  });
});

describe("shutdown and a new start", () => {
  it("powers the guest off through the channel", async () => {
    await channels.qga.shutdown("powerdown", deadline());
    await machine.waitForShutdown({ timeout: 120_000 });
    expect(machine.state).toBe("exited");
  });

  it("reaches the agent of the VM started again through the same client", async () => {
    await machine.start();
    await machine.guestAgent({ timeout: 300_000 });
    const outcome = await channels.qga.exec({ argv: ["cat", "/proc/uptime"] }, deadline());
    expect(Number(text(outcome.stdout).split(" ")[0])).toBeLessThan(600);
  });
});
