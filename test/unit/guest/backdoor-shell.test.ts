import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Deadline } from "../../../src/deadline.ts";
import { ErrorCodes } from "../../../src/errors.ts";
import { BackdoorShell } from "../../../src/guest/backdoor-shell.ts";
import {
  type LocalBackdoor,
  type LocalBackdoorOptions,
  startLocalBackdoor,
} from "../../helpers/local-backdoor.ts";

let peer: LocalBackdoor | undefined;
afterEach(() => peer?.kill());

const describeNothing = () => ["(no console)"];
const deadline = (timeout = 10_000, signal?: AbortSignal) =>
  new Deadline("test", { timeout, ...(signal ? { signal } : {}) }, timeout);

async function connect(options: LocalBackdoorOptions = {}): Promise<BackdoorShell> {
  peer = await startLocalBackdoor(options);
  return BackdoorShell.connect(peer.streams, deadline(), describeNothing);
}

/** True once `pid` is gone (or a zombie nobody needs). */
function isGone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
}

describe("BackdoorShell against a real bash", () => {
  it("keeps exit code, stdout and stderr apart", async () => {
    const shell = await connect();
    const result = await shell.exec("echo out; echo err >&2; exit 7", deadline(), describeNothing);
    expect(result.exitCode).toBe(7);
    expect(result.stdout.toString()).toBe("out\n");
    expect(result.stderr.toString()).toBe("err\n");
  });

  it("passes shell-hostile text as a local shell would", async () => {
    const shell = await connect();
    const text = `a'b"c $(echo no) \`echo no\` \\ \n line2`;
    const result = await shell.exec(
      `printf '%s' ${JSON.stringify("$1")} ; cat <<'EOF'\n${text}\nEOF`,
      deadline(),
      describeNothing,
    );
    expect(result.stdout.toString()).toBe(`${text}\n`);
  });

  it("returns non-UTF-8 output byte for byte", async () => {
    const shell = await connect();
    const result = await shell.exec("printf '\\xff\\xfe\\x00\\x80'", deadline(), describeNothing);
    expect([...result.stdout]).toEqual([0xff, 0xfe, 0x00, 0x80]);
  });

  it("does not hang when a background child keeps stdout open", async () => {
    const shell = await connect();
    const started = performance.now();
    const result = await shell.exec("sleep 30 & echo started", deadline(), describeNothing);
    expect(result.stdout.toString()).toBe("started\n");
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("streams stderr while the command runs", async () => {
    const shell = await connect();
    const seen: string[] = [];
    const result = await shell.exec(
      "echo a >&2; sleep 0.3; echo b >&2",
      deadline(),
      describeNothing,
      {
        onStderr: (chunk) => seen.push(chunk.toString()),
      },
    );
    expect(seen.join("")).toBe("a\nb\n");
    expect(seen.length).toBe(2);
    expect(result.stderr.toString()).toBe("a\nb\n");
  });

  it("runs simple commands without a subshell and the rest in one, with the same results", async () => {
    const shell = await connect();
    const simple = await shell.exec("printf %s hello", deadline(), describeNothing);
    expect(simple).toEqual({
      exitCode: 0,
      stdout: Buffer.from("hello"),
      stderr: Buffer.alloc(0),
      isKilled: false,
    });
    const missing = await shell.exec("no-such-program-here", deadline(), describeNothing);
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr.toString()).toContain("no-such-program-here");
    const exits = await shell.exec("exit 9", deadline(), describeNothing);
    expect(exits.exitCode).toBe(9);
    expect((await shell.exec("true", deadline(), describeNothing)).exitCode).toBe(0);
  });

  it("runs concurrent calls one after the other with the right results", async () => {
    const shell = await connect();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        shell.exec(`echo ${i}; exit ${i % 5}`, deadline(), describeNothing),
      ),
    );
    results.forEach((result, i) => {
      expect(result.stdout.toString()).toBe(`${i}\n`);
      expect(result.exitCode).toBe(i % 5);
    });
  });

  it("does not leak state between commands", async () => {
    const shell = await connect();
    await shell.exec("cd /; export LEAK=1; x=2", deadline(), describeNothing);
    const result = await shell.exec(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
      'echo "$PWD ${LEAK:-unset} ${x:-unset} $#"',
      deadline(),
      describeNothing,
    );
    expect(result.stdout.toString()).not.toMatch(/^\/ /);
    expect(result.stdout.toString()).toMatch(/unset unset 0\n$/);
  });

  it("times out with the awaited thing and the given details; the next call waits for that command to end", async () => {
    const shell = await connect();
    const error = await shell
      .exec(
        "sleep 1; echo late; echo late >&2",
        new Deadline("sleeping", { timeout: 300 }, 300),
        () => ["console says hi"],
      )
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(error.message).toContain("sleeping: timed out after 300 ms");
    expect(error.message).toContain("console says hi");
    const started = performance.now();
    const next = await shell.exec("echo next; exit 3", deadline(), describeNothing);
    expect(next).toEqual({
      exitCode: 3,
      stdout: Buffer.from("next\n"),
      stderr: Buffer.alloc(0),
      isKilled: false,
    });
    expect(performance.now() - started).toBeGreaterThan(400);
  });

  it("a call whose deadline ends while the previous command still runs fails without running", async () => {
    const shell = await connect();
    await shell
      .exec("sleep 3; touch ran-late", deadline(200), describeNothing)
      .catch(() => undefined);
    const error = await shell
      .exec("touch should-not-run", deadline(300), describeNothing)
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(error.message).toContain("earlier command that overran");
    const after = await shell.exec("echo in-step", deadline(10_000), describeNothing);
    expect(after.stdout.toString()).toBe("in-step\n");
    // The shell works in a temporary folder of its own, never in the current one.
    expect(existsSync(join(peer?.dir ?? "", "ran-late"))).toBe(true);
    expect(existsSync(join(peer?.dir ?? "", "should-not-run"))).toBe(false);
    expect(existsSync(join(process.cwd(), "ran-late"))).toBe(false);
  });

  it("a call queued behind a long one fails at its own deadline, not at the other's", async () => {
    const shell = await connect();
    const long = shell.exec("sleep 3", deadline(10_000), describeNothing);
    const started = performance.now();
    const error = await shell.exec("echo queued", deadline(500), describeNothing).catch((e) => e);
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    expect(error.message).toContain("waiting for an earlier call to end: test");
    expect(performance.now() - started).toBeLessThan(1500);
    expect((await long).exitCode).toBe(0);
  });

  it("after a call aborted by its signal, the next calls end by their deadlines", async () => {
    const shell = await connect();
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const aborted = await shell
      .exec("sleep 2", deadline(10_000, abort.signal), describeNothing)
      .catch((e) => e);
    expect(aborted.code).toBe(ErrorCodes.ABORTED);
    const started = performance.now();
    const early = await shell.exec("echo early", deadline(500), describeNothing).catch((e) => e);
    expect(early.code).toBe(ErrorCodes.TIMEOUT);
    expect(performance.now() - started).toBeLessThan(1500);
    const late = await shell.exec("echo late", deadline(10_000), describeNothing);
    expect(late.stdout.toString()).toBe("late\n");
  });

  it("fails pending calls at once when the peer goes away", async () => {
    const shell = await connect();
    const pending = shell.exec("sleep 30", deadline(30_000), describeNothing).catch((e) => e);
    setTimeout(() => peer?.kill(), 100);
    const started = performance.now();
    const error = await pending;
    expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("times out waiting for a banner that never comes", async () => {
    peer = await startLocalBackdoor({ banner: "no banner here" });
    const error = await BackdoorShell.connect(
      peer.streams,
      new Deadline("banner", { timeout: 300 }, 300),
      describeNothing,
    ).catch((e) => e);
    expect(error).toMatchObject({ code: ErrorCodes.TIMEOUT });
  });
});

describe("a limit kept in the guest", () => {
  it("kills the command's process group at the limit and says so apart from exit codes", async () => {
    const shell = await connect();
    const started = performance.now();
    const reply = await shell.exec(
      "echo $BASHPID > leader; trap '' TERM; (trap '' TERM; sleep 1000) & echo $! > child; echo begun; sleep 1000",
      deadline(1000),
      describeNothing,
      { guestDeadline: "kill" },
    );
    expect(reply).toMatchObject({ isKilled: true, stdout: Buffer.from("begun\n") });
    // Nothing of corral's own machinery reaches the command's output.
    expect(reply.stderr.toString()).toBe("");
    expect(performance.now() - started).toBeLessThan(1000 + 2000 + 1500);
    for (const name of ["leader", "child"]) {
      const pid = Number(readFileSync(join(peer?.dir ?? "", name), "utf8"));
      for (let i = 0; i < 50 && !isGone(pid); i++) await sleep(20);
      expect(isGone(pid)).toBe(true);
    }
    expect((await shell.exec("echo next", deadline(), describeNothing)).stdout.toString()).toBe(
      "next\n",
    );
  });

  it("returns the command's own exit status and output when it ends in time", async () => {
    const shell = await connect();
    const reply = await shell.exec(
      "echo out; echo err >&2; exit 124",
      deadline(5000),
      describeNothing,
      {
        guestDeadline: "kill",
      },
    );
    expect(reply).toEqual({
      exitCode: 124,
      stdout: Buffer.from("out\n"),
      stderr: Buffer.from("err\n"),
      isKilled: false,
    });
  });
});

describe("a shell that dies", () => {
  it("fails the running call at once, and the next call takes over the guest's new shell", async () => {
    const shell = await connect({ restarts: true });
    const started = performance.now();
    const error = await shell.exec("kill -9 $$", deadline(30_000), describeNothing).catch((e) => e);
    expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect(error.message).toMatch(/test: the backdoor shell died while running the command/);
    expect(performance.now() - started).toBeLessThan(3000);
    const alive = await shell.exec("echo alive", deadline(30_000), describeNothing);
    expect(alive.stdout.toString()).toBe("alive\n");
  });

  it("is noticed although pkill -f 'bash --norc' kills every shell process", async () => {
    const shell = await connect({ restarts: true });
    const error = await shell
      .exec(
        `pkill -KILL -s "$(ps -o sid= $$ | tr -d ' ')" -f 'bash --norc'; sleep 30`,
        deadline(30_000),
        describeNothing,
        { guestDeadline: "kill" },
      )
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    const alive = await shell.exec("echo alive", deadline(30_000), describeNothing);
    expect(alive.stdout.toString()).toBe("alive\n");
  });

  it("dying while idle, does not run the next command twice or lose it", async () => {
    const shell = await connect({ restarts: true });
    await shell.exec("echo warm", deadline(), describeNothing);
    peer?.killShell();
    await sleep(200);
    const reply = await shell.exec(
      "echo once >> runs; cat runs",
      deadline(30_000),
      describeNothing,
    );
    expect(reply.stdout.toString()).toBe("once\n");
  });

  it("that no one restarts makes later calls fail with CORRAL_GUEST_CHANNEL_BROKEN, by their deadlines", async () => {
    const shell = await connect();
    await shell.exec("kill -9 $$", deadline(30_000), describeNothing).catch(() => undefined);
    const started = performance.now();
    const short = await shell.exec("echo x", deadline(1000), describeNothing).catch((e) => e);
    expect(short.code).toBe(ErrorCodes.TIMEOUT);
    expect(performance.now() - started).toBeLessThan(2000);
    const long = await shell.exec("echo x", deadline(60_000), describeNothing).catch((e) => e);
    expect(long.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect(long.message).toMatch(/did not start a new one within 10 s/);
    expect(performance.now() - started).toBeLessThan(12_000);
    const after = performance.now();
    const again = await shell.exec("echo x", deadline(60_000), describeNothing).catch((e) => e);
    expect(again.code).toBe(ErrorCodes.GUEST_CHANNEL_BROKEN);
    expect(performance.now() - after).toBeLessThan(500);
  });
});

describe("output size", () => {
  it("keeps at most maxBuffer bytes, streams everything, fails once the command ended, and stays in step", async () => {
    const shell = await connect();
    let streamed = 0;
    const error = await shell
      .exec("head -c 3000000 /dev/zero; echo done >&2", deadline(), describeNothing, {
        maxBuffer: 1_000_000,
        onStdout: (chunk) => {
          streamed += chunk.length;
        },
      })
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.OUTPUT_TOO_LARGE);
    expect(error.message).toMatch(/wrote 3000000 bytes to stdout, more than maxBuffer \(1000000/);
    expect(streamed).toBe(3_000_000);
    const next = await shell.exec("echo next", deadline(), describeNothing);
    expect(next.stdout.toString()).toBe("next\n");
  });

  it("buffers at most 64 MiB by default: 200 MB of output does not take 200 MB of memory", async () => {
    const shell = await connect();
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    let streamed = 0;
    const error = await shell
      .exec("head -c 200M /dev/zero", deadline(60_000), describeNothing, {
        onStdout: (chunk) => {
          streamed += chunk.length;
          peak = Math.max(peak, process.memoryUsage().arrayBuffers);
        },
      })
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.OUTPUT_TOO_LARGE);
    expect(streamed).toBe(200 * 1024 * 1024);
    expect(peak - before).toBeLessThan(150 * 1024 * 1024);
  });
});
