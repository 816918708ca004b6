// The Machine seed against the real default image: boot, execute, and the failure paths.

import { join } from "node:path";
import { ErrorCodes, Machine, MachineExitedError, TimeoutError } from "corral";
import { describe, expect, it } from "vitest";
import { findImage } from "../../src/images/image-cache.ts";
import { processesMentioning } from "../helpers/cli.ts";

describe("Machine", () => {
  it("boots the default image and runs commands with their own exit codes and output", async () => {
    await using machine = new Machine();
    await machine.waitForShell();
    const first = await machine.execute("echo $((6 * 7)); echo warn >&2; false");
    expect(first).toEqual({
      exitCode: 1,
      stdout: "42\n",
      stderr: "warn\n",
    });
    const systemd = await machine.execute("readlink /proc/1/exe");
    expect(systemd.stdout).toBe("/usr/lib/systemd/systemd\n");
    const seen = new Promise<string>((resolve) =>
      machine.onConsoleLine((line) => {
        if (line.includes("console-marker")) resolve(line);
      }),
    );
    await machine.execute("echo console-marker-$((1 + 1)) > /dev/ttyS0");
    expect(await seen).toBe("console-marker-2");
    expect(machine.consoleLines).toContain("console-marker-2");
  });

  it("streams stdout while the command runs", async () => {
    await using machine = new Machine();
    const chunks: string[] = [];
    const result = await machine.execute("for i in 1 2 3; do echo $i; sleep 0.2; done", {
      onStdout: (chunk) => chunks.push(chunk.toString()),
    });
    expect(chunks.join("")).toBe("1\n2\n3\n");
    expect(chunks.length).toBeGreaterThan(1);
    expect(result.stdout).toBe("1\n2\n3\n");
  });

  it("times out waiting for a guest that never prints the banner, with the last 30 console lines", async () => {
    await using machine = new Machine({
      env: { QEMU_KERNEL_PARAMS: "systemd.mask=backdoor.service" },
    });
    const error = await machine.waitForShell({ timeout: 25_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    const message = (error as TimeoutError).message;
    expect(message).toContain("waitForShell: timed out after 25.0 s");
    expect(message).toMatch(/Last 30 console lines:\n( {2}\| .*\n){29} {2}\| .*/);
  });

  it("reports QEMU refusing its arguments with QEMU's own words", async () => {
    await using machine = new Machine({ env: { QEMU_OPTS: "-no-such-option" } });
    const error = await machine.waitForShell().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MachineExitedError);
    expect((error as MachineExitedError).code).toBe(ErrorCodes.MACHINE_EXITED);
    expect((error as Error).message).toMatch(
      /QEMU exited with code 1 .*\n.*QEMU said:\n.*-no-such-option/s,
    );
  });

  it("boots from the image's start script like from a Nix-built one", async () => {
    const image = await findImage("debian-12");
    await using machine = new Machine({ startScript: join(image.dir, image.manifest.startScript) });
    expect(machine.name).toBe("debian-12");
    const result = await machine.execute("cat /etc/hostname");
    expect(result.stdout).toBe("corral\n");
  });

  it("fails a pending command at once when the VM dies", async () => {
    await using machine = new Machine();
    await machine.waitForShell();
    const pending = machine.execute("sleep 600").catch((e: unknown) => e);
    const [qemu] = processesMentioning(machine.stateDir ?? "?");
    const started = performance.now();
    process.kill(Number(qemu?.split(" ")[0]), "SIGKILL");
    const error = await pending;
    expect(error).toBeInstanceOf(MachineExitedError);
    expect((error as Error).message).toContain("QEMU was killed by SIGKILL");
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
