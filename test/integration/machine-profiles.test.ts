// Machine profiles on real VMs: corral's image on a microvm, a disk booted by SeaBIOS through
// its own boot loader, a q35 + UEFI machine with no OS reaching OVMF, an imported copy of the
// image's root disk with a CD-ROM on a persistent pc, and ACPI power-down on them.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Machine, UnsupportedError } from "corral";
import { describe, expect, it, onTestFinished } from "vitest";
import { findImage } from "../../src/images/image-cache.ts";
import { processesMentioning, temporaryDir } from "../helpers/cli.ts";
import { serialBootDisk } from "../helpers/image-files.ts";

/** Kills the persistent VM in `stateDir`, if a failed test left one. */
function killLeftover(stateDir: string): void {
  onTestFinished(() => {
    try {
      const { pid } = JSON.parse(readFileSync(join(stateDir, "vm.json"), "utf8"));
      process.kill(pid, "SIGKILL");
    } catch {
      // none left
    }
  });
}

describe("machine profiles", () => {
  it("boots corral's image on a microvm to the backdoor shell, and powers it off with the ACPI button", async () => {
    await using machine = new Machine({ name: "micro", machineType: "microvm" });
    expect(await machine.succeed("echo $((6 * 7))")).toBe("42\n");
    // No PCI bus: the disk, the shell's ports and the NIC sit on virtio-mmio.
    expect(await machine.succeed("ls /sys/bus/pci/devices | wc -l")).toBe("0\n");
    const drivers = await machine.succeed(
      "udevadm settle; for d in /sys/bus/virtio/devices/*; do basename $(readlink $d/driver); done | sort | tr '\\n' ' '",
    );
    expect(drivers).toBe("virtio_blk virtio_console virtio_net virtio_rng ");
    await expect(machine.screenshot(join(temporaryDir("corral-micro-"), "s.png"))).rejects.toThrow(
      UnsupportedError,
    );

    const result = await machine.powerDown({ graceMs: 60_000 });
    expect(result.isForced).toBe(false);
    expect(machine.state).toBe("stopped");
    expect(machine.consoleLines.some((line) => line.includes("Power key pressed"))).toBe(true);
  });

  it("boots an imported disk through its own boot loader (SeaBIOS, pc), leaving the disk as it was", async () => {
    const dir = temporaryDir("corral-mbr-");
    const disk = join(dir, "serial.raw");
    serialBootDisk(disk, "corral-mbr-ok");
    const before = statSync(disk);
    await using machine = new Machine({ name: "mbr", bootDisk: { path: disk, format: "raw" } });
    await machine.start();
    expect(await machine.waitForConsoleText(/corral-mbr-ok/, { timeout: 60_000 })).toBe(
      "corral-mbr-ok",
    );
    const overlay = JSON.parse(
      execFileSync(
        "qemu-img",
        ["info", "-U", "--output=json", join(machine.stateDir ?? "", "root.qcow2")],
        {
          encoding: "utf8",
        },
      ),
    );
    expect(overlay["backing-filename"]).toBe(disk);
    await machine.crash();
    expect(statSync(disk).mtimeMs).toBe(before.mtimeMs);
  });

  it("brings a q35 machine with UEFI and no OS to OVMF's shell, and forces it off when the button is ignored", async () => {
    await using machine = new Machine({
      name: "firmware",
      image: null,
      machineType: "q35",
      firmware: "uefi",
      diskGiB: 1,
    });
    await machine.start();
    await machine.waitForConsoleText(/UEFI Interactive Shell/, { timeout: 120_000 });
    const stateDir = machine.stateDir ?? "";
    expect(statSync(join(stateDir, "uefi-vars.fd")).size).toBe(
      statSync("/usr/share/OVMF/OVMF_VARS_4M.fd").size,
    );
    const root = JSON.parse(
      execFileSync("qemu-img", ["info", "-U", "--output=json", join(stateDir, "root.qcow2")], {
        encoding: "utf8",
      }),
    );
    expect(root["virtual-size"]).toBe(1024 ** 3);
    const png = await machine.screenshot(join(temporaryDir("corral-uefi-"), "firmware"));
    expect(readFileSync(png).subarray(1, 4).toString()).toBe("PNG");

    // The firmware's shell does not handle the power button.
    const result = await machine.powerDown({ graceMs: 2000 });
    expect(result).toMatchObject({ isForced: true });
    expect(result.elapsedMs).toBeGreaterThanOrEqual(2000);
    expect(machine.state).toBe("stopped");
  });

  it("boots a persistent pc from a raw copy of the image's root disk, grown, with a CD-ROM, and powers it off", async () => {
    const dir = temporaryDir("corral-import-");
    const stateDir = join(dir, "state");
    killLeftover(stateDir);
    const base = join(dir, "imported.raw");
    const image = await findImage();
    execFileSync("qemu-img", ["convert", "-O", "raw", join(image.dir, "root.qcow2"), base]);
    const baseBefore = statSync(base);
    const iso = join(dir, "marker.iso");
    writeFileSync(iso, Buffer.concat([Buffer.from("corral-cdrom\n"), Buffer.alloc(2048 * 16)]));

    await using machine = new Machine({
      name: "imported",
      image: image.manifest.id,
      bootDisk: { path: base, format: "raw" },
      diskGiB: 3,
      drives: [{ path: iso, media: "cdrom" }],
      ownership: "persistent",
      stateDir,
    });
    // The guest grows its root filesystem to the 3 GiB disk at boot (x-systemd.growfs).
    await machine.waitUntilSucceeds(`test $(findmnt -bno SIZE /) -gt ${2.5 * 1024 ** 3}`, {
      timeout: 60_000,
    });
    expect(
      await machine.succeed(
        "udevadm settle; dd if=/dev/sr0 bs=2048 count=1 status=none | head -n 1",
      ),
    ).toBe("corral-cdrom\n");
    await machine.succeed("echo written > /root/imported && sync");

    const result = await machine.powerDown();
    expect(result.isForced).toBe(false);
    expect(machine.state).toBe("stopped");
    expect(processesMentioning(stateDir)).toEqual([]);
    expect(existsSync(join(stateDir, "vm.json"))).toBe(false);
    expect(statSync(base).mtimeMs).toBe(baseBefore.mtimeMs);
  });
});
