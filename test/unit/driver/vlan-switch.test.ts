// A VLAN switch that dies is reported at once, by the switch and by the driver that owns it; one
// that is disposed is not. Real vde_switch processes, no VM.

import { readdirSync } from "node:fs";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Driver } from "../../../src/driver/driver.ts";
import { DriverLog } from "../../../src/driver/driver-log.ts";
import { VlanSwitch } from "../../../src/driver/vlan-switch.ts";
import { ErrorCodes } from "../../../src/errors.ts";
import { temporaryDir } from "../../helpers/cli.ts";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("VlanSwitch", () => {
  it("reports its death with the VLAN and how it ended", async () => {
    await using vlanSwitch = await VlanSwitch.start(3, temporaryDir("corral-vlan-"));
    process.kill(vlanSwitch.pid, "SIGKILL");
    const error = await vlanSwitch.died;
    expect(error).toMatchObject({ code: ErrorCodes.HOST_COMMAND_FAILED });
    expect(error.message).toMatch(
      /^the switch of VLAN 3 \(vde_switch, process \d+\) was killed by SIGKILL: the machines on VLAN 3 are cut off/,
    );
  });

  it("is not reported dead when it is disposed", async () => {
    const vlanSwitch = await VlanSwitch.start(4, temporaryDir("corral-vlan-"));
    await vlanSwitch[Symbol.asyncDispose]();
    const outcome = await Promise.race([vlanSwitch.died, sleep(300, "alive")]);
    expect(outcome).toBe("alive");
  });
});

describe("Driver", () => {
  it("fails at once when one of its switches dies, naming the VLAN", async () => {
    const runtimeDir = temporaryDir("corral-rt-");
    vi.stubEnv("XDG_RUNTIME_DIR", runtimeDir);
    const driver = await Driver.create({
      vlans: [5, 6],
      log: new DriverLog({ terminal: new PassThrough() }),
    });
    try {
      const second = driver.vlans.find((vlanSwitch) => vlanSwitch.vlan === 6);
      expect(second?.pid).toBeGreaterThan(0);
      process.kill(second?.pid as number, "SIGKILL");
      const started = performance.now();
      await expect(driver.failed).rejects.toThrow(/^the switch of VLAN 6 .* was killed by SIGKILL/);
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      await driver[Symbol.asyncDispose]();
    }
    expect(readdirSync(runtimeDir)).toEqual([]);
  });
});
