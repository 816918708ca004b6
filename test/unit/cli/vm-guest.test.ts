// `corral vm exec|cp|ps|info|logs|services` as a user runs them (the built CLI), against a daemon
// in this process whose guest is a fake (real bash processes, a temporary folder as its root):
// streamed and one-shot exec with stdin and exit codes, cp both ways checked by sha256, the
// listings as tables and JSON, usage and daemon errors with their exit status.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorralError, ErrorCodes } from "../../../src/errors.ts";
import { CLI, type CliResult, runCli, temporaryDir } from "../../helpers/cli.ts";
import { CLEAN_ENV } from "../../helpers/cli-daemon.ts";
import { type FakeGuest, fakeGuest } from "../../helpers/fake-guest-ops.ts";
import { startTestDaemon, type TestDaemon } from "../../helpers/http.ts";

let daemon: TestDaemon;
let guest: FakeGuest;
let plain: FakeGuest;
let env: Record<string, string>;

beforeAll(async () => {
  guest = fakeGuest();
  plain = fakeGuest({ channel: "qga", streaming: false, interactiveStdin: false });
  daemon = await startTestDaemon({
    logLevel: "silent",
    guests: async (id) => {
      if (id === "web") return guest;
      if (id === "plain") return plain;
      throw new CorralError(ErrorCodes.NOT_FOUND, `no VM named "${id}"`);
    },
  });
  env = { ...CLEAN_ENV, CORRAL_SOCKET: daemon.listening.socket };
});

afterAll(async () => {
  await daemon?.[Symbol.asyncDispose]();
  for (const fake of [guest, plain]) rmSync(fake.root, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(args, env);

/** The CLI with `input` on its stdin (a pipe, not a terminal). */
function cliWithInput(input: string, ...args: string[]): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdin.end(input);
  return new Promise((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

describe("corral vm exec", () => {
  it("streams a command's output apart and passes its exit code through", async () => {
    expect(
      await cli("vm", "exec", "web", "--", "bash", "-c", "echo out; echo err >&2; exit 4"),
    ).toEqual({
      code: 4,
      signal: null,
      stdout: "out\n",
      stderr: "err\n",
    });
    expect(await cli("vm", "exec", "web", "echo $((6 * 7)) | tr 4 X")).toMatchObject({
      code: 0,
      stdout: "X2\n",
    });
    const withOptions = await cli(
      "vm",
      "exec",
      "web",
      "-e",
      "A=1",
      "-e",
      "B=two",
      "--cwd",
      "/",
      "--",
      "bash",
      "-c",
      'echo "$A $B"',
    );
    expect(withOptions).toMatchObject({ code: 0, stdout: "1 two\n" });
  });

  it("forwards stdin that is not a terminal, streamed or one-shot", async () => {
    expect(
      await cliWithInput("line one\nline two\n", "vm", "exec", "web", "--", "wc", "-l"),
    ).toMatchObject({
      code: 0,
      stdout: "2\n",
    });
    expect(await cliWithInput("piped", "vm", "exec", "plain", "--", "cat")).toMatchObject({
      code: 0,
      stdout: "piped",
    });
    expect(await cli("vm", "exec", "plain", "--", "bash", "-c", "echo $0; exit 3")).toMatchObject({
      code: 3,
      stdout: "bash\n",
    });
  });

  it("says when the command timed out, when the program is missing, when the VM is unknown", async () => {
    const timedOut = await cli("vm", "exec", "plain", "--timeout", "200", "--", "sleep", "30");
    expect(timedOut.stderr).toContain("ran past --timeout and was killed");
    expect(await cli("vm", "exec", "web", "--", "/no/such/program")).toMatchObject({ code: 127 });
    const unknown = await cli("vm", "exec", "nope", "--", "true");
    expect(unknown).toMatchObject({
      code: 125,
      stderr: 'corral: no VM named "nope" [CORRAL_NOT_FOUND]\n',
    });
    const noPty = await cli("vm", "exec", "web", "-t", "--", "true");
    expect(noPty.code).toBe(125);
    expect(noPty.stderr).toContain("has no pseudo-terminal: leave tty out [CORRAL_UNSUPPORTED]");
  });
});

describe("corral vm cp", () => {
  it("copies a file into the guest and back, checked by sha256", async () => {
    const dir = temporaryDir("corral-cp-");
    const bytes = Buffer.from(Array.from({ length: 500_000 }, (_, i) => (i * 13) % 251));
    writeFileSync(join(dir, "data.bin"), bytes, { mode: 0o640 });
    const up = await cli("vm", "cp", join(dir, "data.bin"), "web:/srv/");
    expect(up).toMatchObject({
      code: 0,
      stdout: `web:/srv/data.bin: ${bytes.length} bytes, sha256 ${sha256(bytes)}\n`,
    });
    expect(sha256(readFileSync(guest.hostPath("/srv/data.bin")))).toBe(sha256(bytes));
    expect(statSync(guest.hostPath("/srv/data.bin")).mode & 0o777).toBe(0o640);

    const down = await cli("vm", "cp", "web:/srv/data.bin", join(dir, "back.bin"), "--json");
    expect(JSON.parse(down.stdout)).toEqual({
      from: "web:/srv/data.bin",
      to: join(dir, "back.bin"),
      sizeBytes: bytes.length,
      sha256: sha256(bytes),
    });
    expect(readFileSync(join(dir, "back.bin")).equals(bytes)).toBe(true);
    expect((await cli("vm", "cp", "web:/srv/data.bin", dir)).code).toBe(0);
    expect(readFileSync(join(dir, "data.bin")).equals(bytes)).toBe(true);

    writeFileSync(guest.hostPath("/srv/hello.txt"), "hello\n");
    expect(await cli("vm", "cp", "web:/srv/hello.txt", "-")).toMatchObject({
      code: 0,
      stdout: "hello\n",
    });
  });

  it("refuses two local or two remote sides, a missing file, and leaves nothing half-written", async () => {
    const dir = temporaryDir("corral-cp-");
    for (const args of [
      ["a", "b"],
      ["web:/a", "web:/b"],
      ["web:relative", "x"],
    ]) {
      const result = await cli("vm", "cp", ...args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toContain("exactly one of");
    }
    const missing = await cli("vm", "cp", "web:/srv/none", join(dir, "none"));
    expect(missing).toMatchObject({
      code: 1,
      stderr: expect.stringContaining("[CORRAL_NOT_FOUND]"),
    });
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(join(dir, "none"))).toBe(false);
  });
});

describe("corral vm ps|info|logs|services", () => {
  it("prints tables, fields and JSON", async () => {
    const ps = await cli("vm", "ps", "web");
    expect(ps.stdout).toMatch(
      /^PID +USER +CPU% +RSS +COMMAND\n1 +root +0\.5 +8 MiB +\/sbin\/init\n$/,
    );
    expect(JSON.parse((await cli("vm", "ps", "web", "--json")).stdout)).toHaveLength(1);
    const info = await cli("vm", "info", "web");
    expect(info.stdout).toMatch(/^hostname: +fake$/m);
    expect(info.stdout).toMatch(/^fs \/: +ext4, 1\.0 GiB used of 8\.0 GiB$/m);
    expect(JSON.parse((await cli("vm", "info", "web", "--json")).stdout)).toMatchObject({
      cpus: 1,
    });

    guest.logEntries.push({
      time: "2026-01-01T00:00:00.000Z",
      priority: 3,
      source: "app",
      message: "boom",
    });
    expect((await cli("vm", "logs", "web", "--identifier", "app", "-n", "5")).stdout).toBe(
      "2026-01-01T00:00:00.000Z 3 app: boom\n",
    );
    expect(JSON.parse((await cli("vm", "logs", "web", "--json")).stdout)).toMatchObject({
      message: "boom",
    });
    expect((await cli("vm", "logs", "web", "--since", "soon")).code).toBe(1);

    expect((await cli("vm", "services", "web")).stdout).toMatch(
      /^NAME +STATE +STARTUP +DESCRIPTION\nssh\.service +active +enabled +OpenBSD/,
    );
    expect(await cli("vm", "services", "web", "stop", "ssh")).toMatchObject({
      code: 0,
      stdout: "ssh.service: inactive\n",
    });
    expect((await cli("vm", "services", "web", "kick", "ssh")).code).toBe(2);
  });

  it("has --help with examples", async () => {
    for (const command of ["exec", "cp", "console", "ps", "info", "logs", "services"]) {
      const help = await cli("vm", command, "--help");
      expect(help.code, command).toBe(0);
      expect(help.stdout, command).toContain(`Example`);
    }
  });
});
