// `corral run` end to end: boots the real default image under the detected accelerator.

import { readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { findImage } from "../../src/images/image-cache.ts";
import {
  collect,
  isolatedRuntimeDir,
  processesMentioning,
  runCli,
  startCli,
} from "../helpers/cli.ts";

async function expectNoVmLeft(runtimeDir: string): Promise<void> {
  // The watchdog may still be removing the state folder of a killed corral on a loaded machine:
  // CI rehearsals saw its `rm -rf` still running after 20 s, which is not understood yet.
  for (let i = 0; i < 600 && processesMentioning(runtimeDir).length > 0; i++) await sleep(100);
  expect(processesMentioning(runtimeDir)).toEqual([]);
}

describe("corral run", () => {
  it("prints the guest's uname -a, exits 0 and leaves nothing behind", async () => {
    const runtimeDir = isolatedRuntimeDir();
    const { manifest } = await findImage("debian-12");
    const result = await runCli(["run", "--", "uname", "-a"], { XDG_RUNTIME_DIR: runtimeDir });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(
        `^Linux corral ${manifest.kernelRelease.replace(/\./g, "\\.")} .* x86_64 GNU/Linux\\n$`,
      ),
    );
    await expectNoVmLeft(runtimeDir);
    expect(readdirSync(runtimeDir)).toEqual([]);
  });

  it("keeps stdout and stderr apart, passes words as is, and exits with the guest's code", async () => {
    const result = await runCli([
      "run",
      "--",
      "sh",
      "-c",
      'printf "%s|" "$0" "$1"; cat /etc/hostname; echo oops >&2; exit 42',
      "it's a $HOME",
      "*",
    ]);
    expect(result.stdout).toBe("it's a $HOME|*|corral\n");
    expect(result.stderr).toBe("oops\n");
    expect(result.code).toBe(42);
  });

  it("runs a single argument as a shell command line in the guest", async () => {
    const result = await runCli([
      "run",
      "--",
      "cat /proc/cmdline | tr ' ' '\\n' | grep -c '^console=ttyS0$'; systemctl is-enabled backdoor.service",
    ]);
    expect(result.stdout).toBe("1\nenabled\n");
    expect(result.code).toBe(0);
  });

  it("takes --boot-timeout and --timeout values past Node's timer limit as no limit", async () => {
    const result = await runCli([
      "run",
      "--boot-timeout",
      "1e9",
      "--timeout",
      "3000000",
      "--",
      "sleep 2; echo slept",
    ]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("slept\n");
    expect(result.code).toBe(0);
  });

  it("rejects an unknown image as bad usage before booting anything, naming the known ones", async () => {
    const result = await runCli(["run", "--image", "nope", "--", "true"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown image "nope"; known recipes: debian-12');
  });

  it("names the missing host tool and the apt-get line that installs it", async () => {
    const result = await runCli(["run", "--", "true"], { PATH: "/nonexistent" });
    expect(result.code).toBe(125);
    expect(result.stderr).toContain(
      "starting machine debian-12 needs qemu-system-x86_64 (not found)",
    );
    expect(result.stderr).toContain(
      "Fix: apt-get install -y --no-install-recommends qemu-system-x86",
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("rejects a bad --accel or --timeout value as a usage error", async () => {
    const result = await runCli(["run", "--accel", "hvf", "--", "true"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("expected kvm or tcg");
    const negative = await runCli(["run", "--timeout", "-1", "--", "true"]);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain("expected a positive number of seconds");
  });

  it.each([
    ["SIGINT", 130],
    ["SIGKILL", null],
  ] as const)("on %s stops the VM and removes its state", async (signal, exitCode) => {
    const runtimeDir = isolatedRuntimeDir();
    const child = startCli(["run", "--", "echo booted; sleep 600"], {
      XDG_RUNTIME_DIR: runtimeDir,
    });
    const done = collect(child);
    await new Promise<void>((resolve) => {
      child.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("booted")) resolve();
      });
    });
    expect(processesMentioning(runtimeDir).length).toBeGreaterThan(0);
    child.kill(signal);
    expect((await done).code).toBe(exitCode);
    await expectNoVmLeft(runtimeDir);
    // The watchdog removes the state folder once the killed QEMU has exited, waiting up to 10 s
    // for it (an exiting process no longer shows its command line to processesMentioning).
    for (let i = 0; i < 150 && readdirSync(runtimeDir).length > 0; i++) await sleep(100);
    expect(readdirSync(runtimeDir)).toEqual([]);
  });
});
