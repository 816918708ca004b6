// cloud-init for real: the debian-12-cloud image, built as a manager image (its folder a copy of
// the cache entry, booted from its own start script), with a NoCloud seed on a CD-ROM. The
// user-data and the users of the request both take effect, and the host name is the one given.

import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureImage } from "../../src/images/build-image.ts";
import { Machine } from "../../src/machine/machine.ts";
import { writeCloudInitSeed } from "../../src/manager/cloud-init-seed.ts";
import { temporaryDir } from "../helpers/cli.ts";
import { temporaryImageService } from "../helpers/image-files.ts";

const KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0corralTestKeyNotReal0000000000000000000 op@host";

beforeAll(async () => {
  await ensureImage("debian-12-cloud");
}, 600_000);

describe("a VM from a cloud image with a NoCloud seed", () => {
  it("runs the user-data, makes the users and takes the host name", {
    timeout: 480_000,
  }, async () => {
    const { images } = await temporaryImageService();
    const job = images.build({ recipe: "debian-12-cloud", name: "cloud" });
    expect(await images.jobs.settled(job.id)).toMatchObject({ state: "done" });
    const image = images.get("cloud");

    const vmDir = temporaryDir("corral-cloud-vm-");
    const seed = await writeCloudInitSeed(vmDir, {
      instanceId: "01JCLOUDINITTEST0000000000",
      hostname: "cloudy",
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

    await using machine = new Machine({
      startScript: join(dirname(image.path), "run-debian-12-cloud-vm"),
      env: { QEMU_OPTS: `-drive file=${seed},format=raw,media=cdrom,readonly=on,if=ide` },
    });
    // cloud-init's four stages, each a Python start under TCG: a minute alone, more beside other VMs.
    const status = await machine.execute("cloud-init status --wait --long", { timeout: 360_000 });
    expect(status.stdout).toContain("status: done");
    expect(status.stdout).toContain("DataSourceNoCloud [seed=/dev/sr0]");
    expect(status.exitCode).toBe(0);

    expect(await machine.succeed("cat /var/tmp/corral-marker")).toBe("written by user-data");
    expect(await machine.succeed("hostname")).toBe("cloudy\n");
    expect(await machine.succeed("cat /var/tmp/corral-hostname-at-runcmd")).toBe("cloudy\n");
    expect(await machine.succeed("cat /home/alice/.ssh/authorized_keys")).toContain(KEY);
    expect(await machine.succeed("sudo -u alice sudo -n id -u")).toBe("0\n");
    expect(await machine.succeed("cloud-init query instance_id")).toBe(
      "01JCLOUDINITTEST0000000000\n",
    );
  });
});
