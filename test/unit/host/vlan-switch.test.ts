// A VLAN switch that dies is reported at once; one that is disposed is not. Real vde_switch
// processes, no VM.

import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import { VlanSwitch } from "../../../src/host/vlan-switch.ts";
import { temporaryDir } from "../../helpers/cli.ts";

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
