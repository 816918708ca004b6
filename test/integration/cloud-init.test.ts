// cloud-init for real, end to end through the API of a real daemon: the debian-12-cloud image
// built as a job (POST /v1/images { build }), a VM made from it with cloudInit data, and the
// guest checked: the daemon wrote its NoCloud seed (instance id the VM's id, host name the VM's
// name) and attached it as a CD-ROM, and the user-data and the users took effect.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Machine } from "../../src/machine/machine.ts";
import {
  type Api,
  type ManagerDaemon,
  qemuPidsUnder,
  startManagerDaemon,
} from "../helpers/manager.ts";

const KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0corralTestKeyNotReal0000000000000000000 op@host";

let manager: ManagerDaemon;
let api: Api;

beforeAll(async () => {
  manager = await startManagerDaemon();
  api = manager.api;
  const queued = await api("POST", "/v1/images", { build: { recipe: "debian-12-cloud" } });
  expect(queued.status, queued.text).toBe(202);
  const { id } = queued.json as { id: string };
  // A cached build is verified and copied in seconds; a cold one takes minutes.
  for (const until = Date.now() + 600_000; Date.now() < until; await sleep(1000)) {
    const job = (await api("GET", `/v1/jobs/${id}`)).json as { state: string; error: unknown };
    if (job.state === "done") return;
    if (job.state === "failed") throw new Error(`the image build failed: ${job.error}`);
  }
  throw new Error("the image build did not end within 10 minutes");
}, 660_000);

afterAll(async () => {
  await manager?.[Symbol.asyncDispose]();
});

describe("a VM of a cloud image, through the API", () => {
  it("gets a NoCloud seed: the user-data runs, the users are made, the host name is the VM's", {
    timeout: 600_000,
  }, async () => {
    const created = await api("POST", "/v1/vms", {
      name: "cloudy",
      image: "debian-12-cloud",
      // Two vCPUs: cloud-init's four stages each start Python, slow under TCG.
      cpus: 2,
      memoryMiB: 1024,
      cloudInit: {
        users: [{ name: "alice", sshAuthorizedKeys: [KEY], sudo: true }],
        userData: [
          "#cloud-config",
          "write_files:",
          "  - path: /var/tmp/corral-marker",
          "    content: written by user-data",
          "runcmd:",
          "  - [sh, -c, 'hostname > /var/tmp/corral-hostname-at-runcmd']",
          "",
        ].join("\n"),
      },
    });
    expect(created.status, created.text).toBe(201);
    const vm = created.json as { id: string; state: string };
    expect(vm.state).toBe("running");
    expect(existsSync(join(manager.stateDir, "vms", vm.id, "seed.iso"))).toBe(true);

    const machine = manager.daemon.manager.vms.machineOf("cloudy") as Machine;
    // cloud-init's four stages, each a Python start under TCG: a minute alone, more under load.
    const status = await machine.execute("cloud-init status --wait --long", { timeout: 360_000 });
    expect(status.stdout).toContain("status: done");
    expect(status.stdout).toContain("DataSourceNoCloud [seed=/dev/sr0]");
    expect(status.exitCode).toBe(0);

    expect(await machine.succeed("cat /var/tmp/corral-marker")).toBe("written by user-data");
    expect(await machine.succeed("cloud-init query instance_id")).toBe(`${vm.id}\n`);
    expect(await machine.succeed("cloud-init query local_hostname")).toBe("cloudy\n");
    expect(await machine.succeed("hostname; cat /var/tmp/corral-hostname-at-runcmd")).toBe(
      "cloudy\ncloudy\n",
    );
    expect(await machine.succeed("cat /home/alice/.ssh/authorized_keys")).toContain(KEY);
    expect(await machine.succeed("sudo -u alice sudo -n id -u")).toBe("0\n");

    expect((await api("DELETE", "/v1/vms/cloudy")).status).toBe(204);
    expect(qemuPidsUnder(manager.stateDir)).toEqual([]);
  });
});
