// The Driver without booting anything: its context and its reaction to a dead VLAN switch. Its
// machines come from a start script that is never run; its switches are real vde_switch processes.

import { chmodSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Driver } from "../../../src/driver/driver.ts";
import { DriverLog } from "../../../src/driver/driver-log.ts";
import { ErrorCodes } from "../../../src/errors.ts";
import { temporaryDir } from "../../helpers/cli.ts";

afterEach(() => {
  vi.unstubAllEnvs();
});

/** A driver in a runtime folder of its own; the folder is checked empty once it is disposed. */
async function driverWith(options: { vlans?: number[]; machine?: string }): Promise<Driver> {
  const runtimeDir = temporaryDir("corral-rt-");
  vi.stubEnv("XDG_RUNTIME_DIR", runtimeDir);
  const startScripts: string[] = [];
  if (options.machine) {
    const script = join(temporaryDir("corral-scripts-"), `run-${options.machine}-vm`);
    writeFileSync(script, "#!/bin/sh\nexit 1\n");
    chmodSync(script, 0o755);
    startScripts.push(script);
  }
  const driver = await Driver.create({
    ...(options.vlans ? { vlans: options.vlans } : {}),
    startScripts,
    log: new DriverLog({ terminal: new PassThrough() }),
  });
  const dispose = driver[Symbol.asyncDispose].bind(driver);
  return Object.assign(driver, {
    [Symbol.asyncDispose]: async () => {
      await dispose();
      expect(readdirSync(runtimeDir)).toEqual([]);
    },
  });
}

describe("Driver", () => {
  it("fails at once when one of its switches dies, naming the VLAN", async () => {
    await using driver = await driverWith({ vlans: [5, 6] });
    const second = driver.vlans.find((vlanSwitch) => vlanSwitch.vlan === 6);
    expect(second?.pid).toBeGreaterThan(0);
    process.kill(second?.pid as number, "SIGKILL");
    const started = performance.now();
    await expect(driver.failed).rejects.toThrow(/^the switch of VLAN 6 .* was killed by SIGKILL/);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("gives each machine by name, and throws for a name that is no machine", async () => {
    await using driver = await driverWith({ machine: "server" });
    const context = driver.context();
    expect(context.server?.name).toBe("server");
    expect(() => context.servr).toThrow(
      expect.objectContaining({
        code: ErrorCodes.NOT_FOUND,
        message: 'no machine named "servr"; machines: server',
      }),
    );
    expect(() => {
      const { servr: _ } = context;
    }).toThrow(/no machine named "servr"/);
    expect("servr" in context).toBe(false);
  });

  it("reads like a plain object to code that probes it", async () => {
    await using driver = await driverWith({ machine: "server" });
    const context = driver.context();
    expect(await Promise.resolve(context)).toBe(context);
    expect(context.then).toBeUndefined();
    expect(context.toJSON).toBeUndefined();
    expect((context as unknown as Record<symbol, unknown>)[Symbol.iterator]).toBeUndefined();
    expect(context.__esModule).toBeUndefined();
    expect(typeof context.toString).toBe("function");
    expect(Object.keys(context)).toContain("server");
  });
});
