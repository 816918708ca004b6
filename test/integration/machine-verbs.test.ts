// Every Machine verb against one real guest (booted once for the file, under TCG here).

import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes, GuestCommandError, Machine, MachineExitedError, TimeoutError } from "corral";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { processesMentioning } from "../helpers/cli.ts";

let machine: Machine;
const hostDir = mkdtempSync(join(tmpdir(), "corral-verbs-"));

beforeAll(async () => {
  machine = new Machine();
  await machine.waitForShell();
  await machine.waitForUnit("multi-user.target");
});

afterAll(async () => {
  await machine?.[Symbol.asyncDispose]();
  rmSync(hostDir, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

async function fetchText(url: string, timeoutMs = 5000): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return response.text();
}

describe("commands", () => {
  it("succeed returns stdout and throws GuestCommandError with the result's fields", async () => {
    expect(await machine.succeed("echo one", "echo two")).toBe("one\ntwo\n");
    const error = await machine
      .succeed("echo partial; echo why >&2; exit 4")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GuestCommandError);
    expect(error).toMatchObject({
      exitCode: 4,
      stdout: "partial\n",
      stderr: "why\n",
      code: ErrorCodes.GUEST_COMMAND_FAILED,
    });
    expect(await machine.fail("false", "exit 3")).toBe("");
    await expect(machine.fail("true")).rejects.toThrow(/succeeded but was expected to fail/);
  });

  it("passes shell-hostile text exactly as a local shell would", async () => {
    const text = `it's "quoted" $(echo no) \`echo no\` \\ ${"$"}{HOME} \n second line\ttab`;
    const result = await machine.execute(`cat <<'CORRAL_EOF'\n${text}\nCORRAL_EOF`);
    expect(result.stdout).toBe(`${text}\n`);
  });

  it("returns non-UTF-8 bytes intact with encoding: buffer", async () => {
    const result = await machine.execute("printf '\\xff\\x00\\xfe\\n'", { encoding: "buffer" });
    expect([...result.stdout]).toEqual([0xff, 0x00, 0xfe, 0x0a]);
  });

  it("carries 100 MB of output", async () => {
    const result = await machine.execute("head -c 100M /dev/zero | tr '\\0' x", {
      encoding: "buffer",
      maxBuffer: 128 * 1024 * 1024,
    });
    expect(result.stdout.length).toBe(100 * 1024 * 1024);
    expect(result.stdout.subarray(-3).toString()).toBe("xxx");
  });

  it("does not hang on a background child that keeps stdout open", async () => {
    const started = performance.now();
    expect((await machine.execute("sleep 60 & echo started")).stdout).toBe("started\n");
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("serialises concurrent calls", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => machine.execute(`echo ${i}; exit ${i}`)),
    );
    expect(results).toEqual(results.map((_, i) => ({ exitCode: i, stdout: `${i}\n`, stderr: "" })));
  });

  it("kills a command at its timeout in the guest and stays usable", async () => {
    const error = await machine
      .execute("echo begun; sleep 30", { timeout: 1500 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(
      /timed out after 1\.5 s \(killed in the guest\)\nstdout so far:\n {2}\| begun/,
    );
    expect((await machine.execute("pgrep -x sleep -a | grep -c 'sleep 30' || true")).stdout).toBe(
      "0\n",
    );
    expect(await machine.succeed("echo still here")).toBe("still here\n");
  });

  it("takes huge timeouts (past Node's timer limit, Infinity) as no limit, and refuses negative ones", async () => {
    expect(await machine.succeed("sleep 1; echo slept", { timeout: 3e12 })).toBe("slept\n");
    const result = await machine.execute("echo ok", { timeout: Number.POSITIVE_INFINITY });
    expect(result.stdout).toBe("ok\n");
    expect(
      await machine.waitUntilSucceeds("sleep 0.5; echo met", { timeout: Number.POSITIVE_INFINITY }),
    ).toBe("met\n");
    await machine.waitForUnit("multi-user.target", { timeout: 1e12 });
    expect(await machine.sendMonitorCommand("info status", { timeout: 3e12 })).toContain("running");
    await expect(machine.execute("true", { timeout: -1 })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await expect(machine.waitForFile("/", { timeout: Number.NaN })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
  });

  it("kills a command that ignores SIGTERM at its limit, and its output shows nothing of corral's", async () => {
    const started = performance.now();
    const error = await machine
      .execute("trap '' TERM; echo begun; sleep 1000", { timeout: 3000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(
      /timed out after 3\.0 s \(killed in the guest\)\nstdout so far:\n {2}\| begun\n(?!stderr)/,
    );
    expect(performance.now() - started).toBeLessThan(3000 + 2000 + 3000);
    const result = await machine.execute("echo out; echo err >&2; exit 124", { timeout: 10_000 });
    expect(result).toEqual({ exitCode: 124, stdout: "out\n", stderr: "err\n" });
    expect((await machine.execute("pgrep -x sleep -a | grep -c 'sleep 1000' || true")).stdout).toBe(
      "0\n",
    );
  });

  it("fails with CORRAL_OUTPUT_TOO_LARGE past maxBuffer, after streaming everything", async () => {
    let streamed = 0;
    const error = await machine
      .execute("head -c 5M /dev/zero", {
        maxBuffer: 1024 * 1024,
        onStdout: (chunk) => {
          streamed += chunk.length;
        },
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCodes.OUTPUT_TOO_LARGE });
    expect(streamed).toBe(5 * 1024 * 1024);
    expect(await machine.succeed("echo in step")).toBe("in step\n");
  });

  it("sleeps in the guest", async () => {
    const started = performance.now();
    await machine.sleep(1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
  });
});

describe("waits", () => {
  it("waitUntilSucceeds and waitUntilFails poll in the guest and return the last output", async () => {
    await machine.succeed("rm -f /tmp/flag; (sleep 1; touch /tmp/flag) &");
    expect(
      await machine.waitUntilSucceeds("test -e /tmp/flag && echo there", { timeout: 20_000 }),
    ).toBe("there\n");
    await machine.succeed("(sleep 1; rm /tmp/flag) &");
    await machine.waitUntilFails("test -e /tmp/flag", { timeout: 20_000 });
  });

  it("a wait that times out says what it waited for and what it saw last", async () => {
    const error = await machine
      .waitUntilSucceeds("echo nope; false", { timeout: 1000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(
      /waitUntilSucceeds\("echo nope; false"\): timed out after 1\.0 s\nLast attempt failed; its stdout:\n {2}\| nope/,
    );
  });

  it("waitForFile, waitForOpenPort, waitForClosedPort, waitForOpenUnixSocket", async () => {
    await machine.succeed("(sleep 1; touch /tmp/later) &");
    await machine.waitForFile("/tmp/later", { timeout: 20_000 });
    await machine.succeed(
      "mkdir -p /srv/www && echo served > /srv/www/index.html && (busybox httpd -f -p 8080 -h /srv/www &)",
    );
    await machine.waitForOpenPort(8080, { timeout: 20_000 });
    await machine.succeed("pkill -f 'busybox httpd -f -p 8080'");
    await machine.waitForClosedPort(8080, { timeout: 20_000 });
    await machine.succeed(
      "systemd-run --unit=corral-sock --socket-property=ListenStream=/run/corral.sock busybox true",
    );
    await machine.waitForOpenUnixSocket("/run/corral.sock", { timeout: 20_000 });
  });
});

describe("systemd", () => {
  it("waitForUnit, getUnitInfo, getUnitProperty, requireUnitState, startJob, stopJob", async () => {
    await machine.succeed("systemd-run --unit=corral-sleeper sleep 600");
    await machine.waitForUnit("corral-sleeper.service", { timeout: 30_000 });
    expect(await machine.getUnitProperty("corral-sleeper.service", "ActiveState")).toBe("active");
    expect((await machine.getUnitInfo("corral-sleeper.service")).MainPID).toMatch(/^[1-9]\d*$/);
    await machine.requireUnitState("corral-sleeper.service", "active");
    await expect(
      machine.requireUnitState("corral-sleeper.service", "inactive"),
    ).rejects.toMatchObject({
      code: ErrorCodes.UNIT_STATE,
    });
    await machine.stopJob("corral-sleeper.service");
    expect((await machine.systemctl("is-active corral-sleeper.service")).stdout).toBe("inactive\n");
    expect((await machine.startJob("systemd-tmpfiles-clean.service")).exitCode).toBe(0);
  });

  it("waitForUnit follows the unit's signals, with dbus-monitor or else busctl, and stops them", async () => {
    // Without a signal the wait would see the change only at its next re-read, 2 s apart.
    const waitForLateUnit = async (unit: string) => {
      await machine.succeed(
        `systemd-run --no-block --unit=${unit} -p ExecStartPre='/bin/sleep 3' sleep 600`,
      );
      await machine.waitForUnit(unit, { timeout: 30_000 });
      const path = `/org/freedesktop/systemd1/unit/${unit.replace(/-/g, "_2d").replace(/\./g, "_2e")}`;
      const [now, property] = (
        await machine.succeed(
          `echo \${EPOCHREALTIME/./}; busctl get-property org.freedesktop.systemd1 ${path} org.freedesktop.systemd1.Unit ActiveEnterTimestamp`,
        )
      ).split("\n");
      // µs since the unit became active: well under the 2 s re-read, even on a loaded host.
      expect(Number(now) - Number(property?.split(" ")[1])).toBeLessThan(1_200_000);
      await machine.fail("pgrep -f '^(dbus-monitor|busctl monitor)'");
    };
    await waitForLateUnit("corral-late.service");
    await machine.succeed("chmod -x /usr/bin/dbus-monitor");
    try {
      await waitForLateUnit("corral-later.service");
    } finally {
      await machine.succeed("chmod +x /usr/bin/dbus-monitor");
    }
  });

  it("fails at once for a unit that failed, is inactive for good, or does not exist", async () => {
    await machine.execute("systemd-run --unit=corral-boom sh -c 'exit 3'");
    const started = performance.now();
    await expect(machine.waitForUnit("corral-boom.service")).rejects.toThrow(
      /unit corral-boom.service failed/,
    );
    await expect(machine.waitForUnit("no-such-unit.service")).rejects.toMatchObject({
      code: ErrorCodes.UNIT_NOT_FOUND,
    });
    await expect(machine.getUnitInfo("no-such-unit.service")).rejects.toMatchObject({
      code: ErrorCodes.UNIT_NOT_FOUND,
    });
    await expect(machine.waitForUnit("systemd-update-utmp.service")).rejects.toThrow(
      /inactive and no job is pending/,
    );
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it("drives a user's systemd instance", async () => {
    await machine.succeed("useradd -m alice", "loginctl enable-linger alice");
    await machine.waitForUnit("default.target", { user: "alice", timeout: 60_000 });
    expect((await machine.systemctl("is-active default.target", { user: "alice" })).stdout).toBe(
      "active\n",
    );
    await expect(
      machine.waitForUnit("default.target", { user: "nobody-here", timeout: 60_000 }),
    ).rejects.toMatchObject({ code: ErrorCodes.NOT_FOUND, message: /has no such user/ });
  });
});

describe("console, screen and keyboard", () => {
  it("captures the serial console and waits for text on it", async () => {
    await machine.succeed("echo corral-console-$((2 + 3)) > /dev/ttyS0");
    expect(await machine.waitForConsoleText(/corral-console-\d/, { timeout: 20_000 })).toBe(
      "corral-console-5",
    );
    expect(machine.getConsoleLog()).toContain("corral-console-5");
  });

  it("sends text to the serial console", async () => {
    await machine.succeed("stty -F /dev/ttyS0 -echo; (head -n 1 /dev/ttyS0 > /tmp/serial-in &)");
    await machine.sleep(0.5);
    machine.sendConsole("from the host\n");
    await machine.waitUntilSucceeds("grep -qx 'from the host' /tmp/serial-in", { timeout: 20_000 });
  });

  it("reads the text of a virtual terminal and waits for it to match", async () => {
    await machine.succeed("(sleep 1; echo corral-on-tty1 > /dev/tty1) &");
    const screen = await machine.waitUntilTtyMatches(1, /corral-on-tty1/, { timeout: 30_000 });
    expect(screen).toContain("corral-on-tty1");
    expect(await machine.getTtyText(1)).toContain("corral-on-tty1");
  });

  it("types keys that reach the guest", async () => {
    await machine.succeed("(head -c 9 /dev/tty1 > /tmp/typed &)");
    await machine.sleep(0.5);
    await machine.sendChars("Hi there\n");
    await machine.waitUntilSucceeds("[ $(stat -c %s /tmp/typed) -eq 9 ]", { timeout: 20_000 });
    expect(await machine.succeed("cat /tmp/typed")).toBe("Hi there\n");
    await machine.sendKey("alt-f2");
    await machine.waitUntilSucceeds('[ "$(cat /sys/class/tty/tty0/active)" = tty2 ]', {
      timeout: 20_000,
    });
    await machine.sendKey("alt-f1");
    await machine.waitUntilSucceeds('[ "$(cat /sys/class/tty/tty0/active)" = tty1 ]', {
      timeout: 20_000,
    });
  });

  it("writes a PNG screenshot of the screen's size", async () => {
    const file = await machine.screenshot(join(hostDir, "screen"));
    expect(file).toBe(join(hostDir, "screen.png"));
    const png = readFileSync(file);
    expect(png.subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
    // VGA text mode, 80x25 characters of 9x16 pixels.
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([720, 400]);
  });

  it("runs monitor commands", async () => {
    expect(await machine.sendMonitorCommand("info status")).toMatch(/VM status: running/);
  });
});

describe("network", () => {
  it("forwards a host port on 127.0.0.1 to the guest, and block/unblock cut and restore the link", async () => {
    await machine.succeed(
      "mkdir -p /srv/fw && echo forwarded > /srv/fw/index.html && (busybox httpd -p 8081 -h /srv/fw &)",
    );
    await machine.waitForOpenPort(8081, { timeout: 20_000 });
    const hostPort = 20_000 + Math.floor(Math.random() * 20_000);
    expect(await machine.forwardPort(hostPort, 8081)).toBe(hostPort);
    expect(await fetchText(`http://127.0.0.1:${hostPort}/`)).toBe("forwarded\n");
    await machine.block();
    await expect(fetchText(`http://127.0.0.1:${hostPort}/`, 2000)).rejects.toThrow();
    await machine.unblock();
    expect(await fetchText(`http://127.0.0.1:${hostPort}/`, 10_000)).toBe("forwarded\n");
  });

  it("forwards host port 0 to a free port it returns, and says when a host port is in use", async () => {
    await machine.succeed(
      "mkdir -p /srv/zero && echo zero > /srv/zero/index.html && (busybox httpd -p 8082 -h /srv/zero &)",
    );
    await machine.waitForOpenPort(8082, { timeout: 20_000 });
    const [first, second] = await Promise.all([
      machine.forwardPort(0, 8082),
      machine.forwardPort(0, 8082),
    ]);
    expect(first).toBeGreaterThan(1023);
    expect(second).not.toBe(first);
    expect(await fetchText(`http://127.0.0.1:${first}/`)).toBe("zero\n");
    expect(await fetchText(`http://127.0.0.1:${second}/`)).toBe("zero\n");

    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    onTestFinished(() => {
      server.close();
    });
    const busy = (server.address() as AddressInfo).port;
    for (const port of [busy, first]) {
      const error = await machine.forwardPort(port, 8082).catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: ErrorCodes.CONFLICT,
        message: `${machine.name}: forwardPort(${port}, 8082): 127.0.0.1:${port} is already in use`,
      });
    }
    await expect(machine.forwardPort(70_000, 8082)).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
  });
});

describe("files", () => {
  it("copies files both ways, byte for byte", async () => {
    const original = randomBytes(8 * 1024 * 1024 + 13);
    const source = join(hostDir, "payload.bin");
    writeFileSync(source, original);
    await machine.copyFromHost(source, "/root/in/payload.bin");
    expect(await machine.succeed("sha256sum /root/in/payload.bin | cut -d' ' -f1")).toBe(
      `${sha256(original)}\n`,
    );
    await machine.succeed("head -c 3000000 /dev/urandom > /root/out.bin; : > /root/empty");
    const guestSum = (await machine.succeed("sha256sum /root/out.bin | cut -d' ' -f1")).trim();
    await machine.copyFromVm("/root/out.bin", join(hostDir, "back/out.bin"));
    expect(sha256(readFileSync(join(hostDir, "back/out.bin")))).toBe(guestSum);
    await machine.copyFromVm("/root/empty", join(hostDir, "empty"));
    expect(readFileSync(join(hostDir, "empty")).length).toBe(0);
    await expect(machine.copyFromVm("/no/such/file", join(hostDir, "x"))).rejects.toMatchObject({
      code: ErrorCodes.NOT_FOUND,
    });
  });

  it("copies a big file both ways with its sha256 taken in the guest, without a deadline", async () => {
    const original = randomBytes(32 * 1024 * 1024 + 7);
    const source = join(hostDir, "big.bin");
    writeFileSync(source, original);
    const unlimited = { sha256: true, timeout: Number.POSITIVE_INFINITY };
    expect(await machine.copyFromHost(source, "/root/big.bin", unlimited)).toEqual({
      kind: "file",
      sha256: sha256(original),
    });
    expect(
      await machine.copyFromVm("/root/big.bin", join(hostDir, "big-back.bin"), unlimited),
    ).toEqual({ kind: "file", sha256: sha256(original) });
    expect(sha256(readFileSync(join(hostDir, "big-back.bin")))).toBe(sha256(original));
    expect(await machine.copyFromHost(source, "/root/plain.bin")).toEqual({ kind: "file" });
    expect(
      await machine.succeed(
        "cmp /root/big.bin /root/plain.bin && rm /root/big.bin /root/plain.bin; echo $?",
      ),
    ).toBe("0\n");
  }, 300_000);

  it("copies folders both ways as trees", async () => {
    const tree = join(hostDir, "tree");
    mkdirSync(join(tree, "a/b"), { recursive: true });
    mkdirSync(join(tree, "empty"));
    const deep = randomBytes(300_000);
    writeFileSync(join(tree, "a/b/deep.bin"), deep);
    writeFileSync(join(tree, "run.sh"), "#!/bin/sh\necho ran\n", { mode: 0o755 });
    symlinkSync("a/b/deep.bin", join(tree, "link"));
    await machine.copyFromHost(tree, "/root/tree");
    expect(await machine.succeed("/root/tree/run.sh; sha256sum < /root/tree/link")).toBe(
      `ran\n${sha256(deep)}  -\n`,
    );
    expect(await machine.succeed("cd /root/tree && find . | sort")).toBe(
      ".\n./a\n./a/b\n./a/b/deep.bin\n./empty\n./link\n./run.sh\n",
    );
    await machine.succeed(
      "mkdir -p /root/tree/made/in/guest && echo guest > /root/tree/made/in/guest/f",
    );
    await machine.copyFromVm("/root/tree", join(hostDir, "tree-back"));
    const back = join(hostDir, "tree-back");
    expect(readdirSync(back).sort()).toEqual(["a", "empty", "link", "made", "run.sh"]);
    expect(readFileSync(join(back, "a/b/deep.bin"))).toEqual(deep);
    expect(readlinkSync(join(back, "link"))).toBe("a/b/deep.bin");
    expect(statSync(join(back, "run.sh")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(back, "made/in/guest/f"), "utf8")).toBe("guest\n");
  });

  it("refuses sockets, devices and FIFOs at once on both sides", async () => {
    const fifo = join(hostDir, "fifo");
    spawnSync("mkfifo", [fifo]);
    const started = performance.now();
    await expect(machine.copyFromHost(fifo, "/root/fifo")).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: /is a FIFO; only regular files and folders can be copied/,
    });
    await expect(machine.copyFromVm("/dev/null", join(hostDir, "null"))).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: /\/dev\/null in the guest is a character special file/,
    });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await machine.succeed("echo alive", { timeout: 30_000 })).toBe("alive\n");
  });

  it("stays usable after a copy the guest cannot write: a full disk, a missing folder", async () => {
    await machine.succeed("mkdir -p /mnt/tiny && mount -t tmpfs -o size=1m tmpfs /mnt/tiny");
    const source = join(hostDir, "four-mib.bin");
    writeFileSync(source, randomBytes(4 * 1024 * 1024));
    const full = await machine.copyFromHost(source, "/mnt/tiny/x.bin").catch((e: unknown) => e);
    expect(full).toBeInstanceOf(GuestCommandError);
    expect((full as GuestCommandError).stderr).toMatch(/No space left on device/);
    const started = performance.now();
    expect(await machine.succeed("echo alive", { timeout: 30_000 })).toBe("alive\n");
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(await machine.succeed("ls -A /mnt/tiny; umount /mnt/tiny")).toBe("");
    await machine.succeed("touch /root/plain-file");
    await expect(
      machine.copyFromHost(source, "/root/plain-file/below/x.bin"),
    ).rejects.toBeInstanceOf(GuestCommandError);
    await machine.copyFromHost(source, "/root/ok.bin");
    expect(await machine.succeed("sha256sum < /root/ok.bin")).toBe(
      `${sha256(readFileSync(source))}  -\n`,
    );
  });
});

describe("reboot", () => {
  it("reboots and is usable again when it returns", async () => {
    const bootId = await machine.succeed("cat /proc/sys/kernel/random/boot_id");
    await machine.succeed("touch /run/before-reboot");
    await machine.reboot({ timeout: 120_000 });
    expect(machine.isUp()).toBe(true);
    expect(await machine.succeed("cat /proc/sys/kernel/random/boot_id")).not.toBe(bootId);
    await machine.fail("test -e /run/before-reboot");
  });
});

describe("lifecycle", () => {
  it("rejects monitor verbs before start with a typed error", async () => {
    await using idle = new Machine();
    await expect(idle.screenshot(join(hostDir, "x"))).rejects.toMatchObject({
      code: ErrorCodes.MACHINE_NOT_RUNNING,
    });
    await expect(idle.block()).rejects.toMatchObject({ code: ErrorCodes.MACHINE_NOT_RUNNING });
  });

  it("shutdown powers the guest off; verbs then fail; start boots it again from its disk, named as the machine", async () => {
    await using cycled = new Machine({ name: "cycled" });
    await cycled.succeed("echo before-power-off > /root/state; sync");
    await cycled.shutdown({ timeout: 60_000 });
    expect(cycled.isUp()).toBe(false);
    await expect(cycled.execute("true")).rejects.toBeInstanceOf(MachineExitedError);
    const linesBefore = cycled.consoleLines.length;
    await cycled.start();
    expect(await cycled.succeed("cat /root/state")).toBe("before-power-off\n");
    expect(readdirSync(cycled.stateDir ?? "").filter((file) => file.endsWith(".qcow2"))).toEqual([
      "debian-12.qcow2",
    ]);
    // The console log runs on across the power cycle.
    expect(cycled.consoleLines.slice(0, linesBefore).join("\n")).toContain("reboot: Power down");
    expect(cycled.consoleLines.length).toBeGreaterThan(linesBefore);
    // The image's start script says -name debian-12; corral's later -name is the one QEMU uses.
    expect((await cycled.sendMonitorCommand("info name")).trim()).toBe("cycled");
    const [qemu] = processesMentioning(cycled.stateDir ?? "?").filter((line) =>
      line.includes("qemu-system"),
    );
    const argv = readFileSync(`/proc/${qemu?.split(" ")[0]}/cmdline`, "utf8").split("\0");
    expect(argv[argv.lastIndexOf("-name") + 1]).toBe("guest=cycled");
  });

  it("a first command's timeout counts the wait for the shell and its error names that limit", async () => {
    await using fresh = new Machine();
    const started = performance.now();
    // Shorter than any boot (a kernel alone takes 2 s under TCG): the wait for the shell ends it.
    const error = await fresh.execute("true", { timeout: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(/execute\("true"\): timed out after 1\.0 s/);
    expect(performance.now() - started).toBeLessThan(1000 + 3000);
  });

  it("crash ends it at once and pending verbs fail; start boots it again with what was synced", async () => {
    await using crashed = new Machine({ name: "crashed" });
    await crashed.succeed("echo before-the-crash > /root/state; sync");
    const pending = crashed.execute("sleep 600").catch((e: unknown) => e);
    await crashed.crash();
    expect(await pending).toBeInstanceOf(MachineExitedError);
    await expect(crashed.screenshot(join(hostDir, "y"))).rejects.toBeInstanceOf(MachineExitedError);
    await crashed.waitForShutdown();
    await crashed.start();
    expect(await crashed.succeed("cat /root/state")).toBe("before-the-crash\n");
  });
});
