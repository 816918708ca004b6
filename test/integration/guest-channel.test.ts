// The guest channel when something goes wrong in the guest: a shell that dies, a fork bomb, a
// command aborted half-way. Every verb ends by its deadline, and the machine recovers when the
// guest starts a new shell (corral's image does; NixOS's does not). One VM for the file: the
// last case leaves it without a shell.

import { CorralError, ErrorCodes, Machine, TimeoutError } from "corral";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let machine: Machine;

beforeAll(async () => {
  machine = new Machine();
  await machine.waitForUnit("multi-user.target");
});

afterAll(async () => {
  await machine?.[Symbol.asyncDispose]();
});

/** Runs `fn`, returning what it resolved or rejected with and how long it took. */
async function timed<T>(fn: () => Promise<T>): Promise<{ outcome: T | unknown; ms: number }> {
  const started = performance.now();
  const outcome = await fn().catch((error: unknown) => error);
  return { outcome, ms: performance.now() - started };
}

describe("a backdoor shell that dies", () => {
  it.each([
    ["kill -9 $$", "kill -9 $$"],
    ["pkill -9 -f 'bash --norc'", "pkill -9 -f 'bash --norc'; sleep 60"],
  ])(
    "by %s fails its call at once, and the guest's new shell is taken over",
    async (_, command) => {
      const { outcome, ms } = await timed(() => machine.execute(command, { timeout: 120_000 }));
      expect(outcome).toMatchObject({
        code: ErrorCodes.GUEST_CHANNEL_BROKEN,
        message: /the backdoor shell died while running the command/,
      });
      expect(ms).toBeLessThan(10_000);
      expect(await machine.succeed("echo alive", { timeout: 30_000 })).toBe("alive\n");
      expect(await machine.succeed("systemctl show -P NRestarts backdoor.service")).not.toBe("0\n");
    },
  );
});

describe("a fork bomb", () => {
  it("under a limit is killed with its whole process group at the limit", async () => {
    const { outcome, ms } = await timed(() =>
      machine.execute("bomb() { bomb | bomb & }; bomb; sleep 600", { timeout: 5000 }),
    );
    expect(outcome).toBeInstanceOf(TimeoutError);
    // The guest kills the group at 5 s; whether its report makes the host's margin (5 s more)
    // is up to TCG: the shell shares its CPU with ~1,000 bomb processes until they are dead,
    // which took 2-4.5 s here. Either way the call ends by the margin.
    expect((outcome as Error).message).toMatch(/timed out after 5\.0 s/);
    expect(ms).toBeLessThan(5000 + 5000 + 1000);
    // The next command waits for the guest to report the kill, then nothing of the bomb is left.
    expect(await machine.succeed("echo alive", { timeout: 60_000 })).toBe("alive\n");
    await machine.waitUntilSucceeds(
      "test $(systemctl show -P TasksCurrent backdoor.service) -lt 20",
      { timeout: 30_000 },
    );
  });

  it("left running never reaches a command as corral's own exit status", async () => {
    const left = await machine.execute("bomb() { bomb | bomb & }; echo $BASHPID; bomb", {
      timeout: 5000,
    });
    expect(left.exitCode).toBe(0);
    try {
      // Each command is started, or fails with corral's error saying why; none returns an exit
      // status of corral's own (the `timeout` wrapper's 125 before).
      for (let i = 0; i < 4; i++) {
        const { outcome, ms } = await timed(() =>
          machine.execute("echo alive", { timeout: 10_000 }),
        );
        if (outcome instanceof CorralError) {
          expect([
            ErrorCodes.GUEST_COMMAND_FAILED,
            ErrorCodes.GUEST_CHANNEL_BROKEN,
            ErrorCodes.TIMEOUT,
          ]).toContain(outcome.code);
        } else {
          expect(outcome).toMatchObject({ exitCode: 0, stdout: "alive\n" });
          // Only what the bomb's own processes write to the shared stderr port, if anything.
          const stderr = (outcome as { stderr: string }).stderr;
          for (const line of stderr.split("\n").filter(Boolean)) expect(line).toMatch(/: fork: /);
        }
        expect(ms).toBeLessThan(10_000 + 5000 + 1000);
      }
    } finally {
      // A simple command runs in the shell itself: no process to start. No limit, so no job.
      await machine.execute(`kill -9 -- -${left.stdout.trim()}`, {
        signal: AbortSignal.timeout(60_000),
      });
    }
    expect(await machine.succeed("echo alive", { timeout: 60_000 })).toBe("alive\n");
  });
});

describe("every verb ends by its deadline", () => {
  it("after a command aborted half-way", async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 500);
    const aborted = await machine
      .execute("sleep 5", { signal: abort.signal })
      .catch((e: unknown) => e);
    expect(aborted).toMatchObject({ code: ErrorCodes.ABORTED });
    const { outcome, ms } = await timed(() => machine.succeed("echo alive", { timeout: 1000 }));
    expect(outcome).toBeInstanceOf(TimeoutError);
    expect(ms).toBeLessThan(1000 + 1000);
    expect(await machine.succeed("echo alive", { timeout: 30_000 })).toBe("alive\n");
  });

  it("after the shell died for good, as on NixOS, whose backdoor service does not restart it", async () => {
    await machine.succeed(
      "mkdir -p /run/systemd/system/backdoor.service.d",
      "printf '[Service]\\nRestart=no\\n' > /run/systemd/system/backdoor.service.d/no-restart.conf",
      "systemctl daemon-reload",
    );
    await machine.execute("kill -9 $$").catch(() => undefined);
    const short = await timed(() => machine.succeed("echo alive", { timeout: 2000 }));
    expect(short.outcome).toBeInstanceOf(TimeoutError);
    expect(short.ms).toBeLessThan(2000 + 1000);
    const long = await timed(() => machine.succeed("echo alive", { timeout: 60_000 }));
    expect(long.outcome).toMatchObject({
      code: ErrorCodes.GUEST_CHANNEL_BROKEN,
      message: /did not start a new one/,
    });
    expect(long.ms).toBeLessThan(15_000);
    const again = await timed(() => machine.copyFromVm("/etc/hostname", "/nonexistent/x"));
    expect(again.outcome).toMatchObject({ code: ErrorCodes.GUEST_CHANNEL_BROKEN });
    expect(again.ms).toBeLessThan(1000);
  });
});
