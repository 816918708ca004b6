import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import type { MachineOptions } from "../../../src/machine/machine-options.ts";
import { validateMachineOptions } from "../../../src/machine/validate-options.ts";

/** The message validateMachineOptions throws for `options`, or undefined when they pass. */
function refusal(options: unknown): string | undefined {
  try {
    validateMachineOptions(options as MachineOptions);
    return undefined;
  } catch (error) {
    expect(error).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    return (error as Error).message;
  }
}

describe("machine profile options", () => {
  it.each([
    { machineType: "microvm" },
    { machineType: "microvm", image: "debian-12", bootDisk: { path: "/d.raw", format: "raw" } },
    { machineType: "q35", firmware: "uefi", image: null, diskGiB: 64, hypervEnlightenments: true },
    { bootDisk: { path: "/imported.qcow2", format: "qcow2" }, diskGiB: 20 },
    {
      drives: [
        { path: "/win.iso", media: "cdrom" },
        { path: "/virtio-win.iso", media: "cdrom", readOnly: true, format: "raw" },
        { path: "/data.qcow2", media: "disk", format: "qcow2" },
      ],
    },
    { startScript: "./run-a-vm", drives: [{ path: "/seed.iso", media: "cdrom" }] },
  ])("accepts %j", (options) => {
    expect(refusal(options)).toBeUndefined();
  });

  it.each([
    [{ machineType: "virt" }, 'machineType is "virt"; expected "pc", "q35" or "microvm"'],
    [{ firmware: "efi" }, 'firmware is "efi"; expected "bios" or "uefi"'],
    [{ bootDisk: { path: "/d.img" } }, '{ path: a disk image file, format: "qcow2" or "raw" }'],
    [{ bootDisk: { path: "/d", format: "raw", size: 1 } }, "bootDisk is"],
    [{ diskGiB: 0 }, "diskGiB is 0; expected a whole number of GiB from 1 to 65536"],
    [{ drives: [{ path: "/a.iso", media: "dvd" }] }, 'drives is [{"path":"/a.iso","media":"dvd"}]'],
    [{ hypervEnlightenments: "yes" }, 'hypervEnlightenments is "yes"; expected true or false'],
    [{ image: 5 }, "image is 5; expected a non-empty string, or null for no corral image"],
    [
      { startScript: "./run-a-vm", machineType: "q35", diskGiB: 4 },
      "new Machine: a start script brings its own machine and disks; machineType, diskGiB need an image or a bootDisk",
    ],
    [
      { firmware: "uefi", machineType: "pc" },
      'firmware "uefi" needs machineType "q35" (it is "pc")',
    ],
    [
      { machineType: "microvm", image: null, diskGiB: 4 },
      "a microvm has no firmware to boot a disk with",
    ],
    [
      { machineType: "microvm", bootDisk: { path: "/d.raw", format: "raw" } },
      "give the image (bootDisk is then its root disk)",
    ],
    [
      { machineType: "microvm", hypervEnlightenments: true },
      "Hyper-V enlightenments are for pc or q35 machines, not microvm",
    ],
    [
      { image: null },
      "with image: null and no bootDisk the VM boots an empty disk: give its size, diskGiB",
    ],
    [
      { bootDisk: { path: "/d.raw", format: "raw" }, kernelParams: ["quiet"] },
      "kernelParams need an image's kernel; a disk booted by its firmware has its own",
    ],
    [{ snapshot: "/snap", diskGiB: 8 }, "has the snapshot's disk: leave diskGiB out"],
    [
      { drives: [{ path: "/a.iso", media: "cdrom", readOnly: false }] },
      "drives[0] is a CD-ROM: always raw (an ISO) and read-only",
    ],
    [{ drives: [{ path: "/a.qcow2", media: "cdrom", format: "qcow2" }] }, "drives[0] is a CD-ROM"],
  ])("refuses %j", (options, message) => {
    expect(refusal(options)).toContain(message);
  });
});
