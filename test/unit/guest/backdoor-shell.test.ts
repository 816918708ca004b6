import { afterEach, describe, expect, it } from "vitest";
import { Deadline } from "../../../src/deadline.ts";
import { ErrorCodes } from "../../../src/errors.ts";
import { BackdoorShell } from "../../../src/guest/backdoor-shell.ts";
import { type LocalBackdoor, startLocalBackdoor } from "../../helpers/local-backdoor.ts";

let peer: LocalBackdoor | undefined;
afterEach(() => peer?.kill());

const describeNothing = () => ["(no console)"];
const deadline = (timeout = 10_000) => new Deadline("test", { timeout }, timeout);

async function connect(): Promise<BackdoorShell> {
  peer = startLocalBackdoor();
  return BackdoorShell.connect(peer.streams, deadline(), describeNothing);
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
    expect(simple).toEqual({ exitCode: 0, stdout: Buffer.from("hello"), stderr: Buffer.alloc(0) });
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
    expect(next).toEqual({ exitCode: 3, stdout: Buffer.from("next\n"), stderr: Buffer.alloc(0) });
    expect(performance.now() - started).toBeGreaterThan(400);
  });

  it("a call whose deadline ends while the previous command still runs fails without running", async () => {
    const shell = await connect();
    await shell
      .exec("sleep 3; touch ran-late", deadline(200), describeNothing)
      .catch(() => undefined);
    const error = await shell
      .exec("echo should-not-run", deadline(300), describeNothing)
      .catch((e) => e);
    expect(error.code).toBe(ErrorCodes.TIMEOUT);
    const after = await shell.exec("echo in-step", deadline(10_000), describeNothing);
    expect(after.stdout.toString()).toBe("in-step\n");
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
    peer = startLocalBackdoor("no banner here");
    const error = await BackdoorShell.connect(
      peer.streams,
      new Deadline("banner", { timeout: 300 }, 300),
      describeNothing,
    ).catch((e) => e);
    expect(error).toMatchObject({ code: ErrorCodes.TIMEOUT });
  });
});
