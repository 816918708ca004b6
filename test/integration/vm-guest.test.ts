// VmService.guest on the manager's own VMs (an in-process daemon): a VM at rest is refused naming
// its state; a VM of corral's image is reached through its backdoor shell; one whose template
// forces qemu-ga through the agent's port every managed VM gets.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Deadline } from "../../src/deadline.ts";
import { ErrorCodes } from "../../src/errors.ts";
import type { VmService } from "../../src/manager/vm-service.ts";
import { type ManagerDaemon, startManagerDaemon } from "../helpers/manager.ts";

let manager: ManagerDaemon;
let vms: VmService;
const deadline = () => new Deadline("vm-guest test", { timeout: 60_000 }, 60_000);

beforeAll(async () => {
  manager = await startManagerDaemon();
  vms = manager.daemon.manager.vms;
  await manager.daemon.manager.templates.add({
    name: "through-agent",
    os: "linux",
    image: "debian-12",
    cpus: 1,
    memoryMiB: 512,
    guestChannel: "qga",
  });
});

afterAll(async () => {
  await manager?.[Symbol.asyncDispose]();
});

describe("VmService.guest", () => {
  it("refuses a VM that is not running, naming its state", async () => {
    const { vm } = await vms.create({ name: "idle", start: false });
    await expect(vms.guest("idle")).rejects.toMatchObject({
      code: ErrorCodes.MACHINE_NOT_RUNNING,
      message: `VM "idle" is ${vm.state}: guest operations need it running (corral vm start idle)`,
    });
  });

  it("reaches a VM of corral's image through its backdoor shell", async () => {
    await vms.create({ name: "shell" });
    const ops = await vms.guest("shell");
    expect(await vms.guestCapabilities("shell")).toMatchObject({
      channel: "backdoor",
      streaming: true,
    });
    const outcome = await ops.exec({ argv: ["hostname"] }, deadline());
    expect(outcome.stdout.toString()).toBe("shell\n");
    expect(await vms.guest("shell")).toBe(ops);
  });

  it("reaches a VM whose template forces qemu-ga through the agent", async () => {
    await vms.create({ name: "agent", template: "through-agent" });
    const ops = await vms.guest("agent", { timeoutMs: 300_000 });
    expect(ops.capabilities).toMatchObject({ channel: "qga", os: "linux", streaming: false });
    const info = await ops.systemInfo(deadline());
    expect(info).toMatchObject({ os: { family: "linux", name: "Debian GNU/Linux" }, cpus: 1 });
  });

  it("names a VM reached only through qemu-ga after the VM, through its agent", async () => {
    const ops = await vms.guest("agent", { timeoutMs: 300_000 });
    await expect
      .poll(async () => (await ops.systemInfo(deadline())).hostname, {
        timeout: 120_000,
        interval: 1000,
      })
      .toBe("agent");
    const files = await ops.exec(
      { command: "cat /etc/hostname; grep '^127.0.1.1' /etc/hosts" },
      deadline(),
    );
    expect(files.stdout.toString()).toBe("agent\n127.0.1.1\tagent\n");
    const vmId = vms.get("agent").id;
    expect(
      manager.daemon.manager.store.events
        .list({ vmId })
        .filter((event) => event.type === "vm.hostname")
        .map((event) => event.data),
    ).toEqual([{ name: "agent", hostname: "agent" }]);
  });
});
