// A managed VM's spec from a template, the OS's defaults and the request; the template's limits;
// which specs this corral can start; a snapshot's default name; QEMU's blockstats.

import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import type { TemplateDocument } from "../../../src/manager/template-schema.ts";
import { machineOptionsFor } from "../../../src/manager/vm-machine-options.ts";
import { snapshotNameNow } from "../../../src/manager/vm-snapshots.ts";
import { buildSpec, hasBackdoorShell } from "../../../src/manager/vm-spec.ts";
import { parseBlockstats } from "../../../src/manager/vm-stats.ts";

const corralImage = {
  kind: "corral",
  cacheId: "debian-12-0123456789ab",
  storeImageId: null,
} as const;

const small: TemplateDocument = {
  name: "small",
  os: "linux",
  cpus: 1,
  memoryMiB: 256,
  kernelParams: ["quiet"],
  min: { memoryMiB: 256 },
  max: { cpus: 2 },
};

describe("buildSpec", () => {
  it("takes the request's fields over the template's, and the OS's defaults under both", () => {
    expect(buildSpec("linux", small, "debian-12", corralImage, { cpus: 2 })).toEqual({
      backend: "qemu",
      machineType: "pc",
      firmware: "bios",
      image: "debian-12",
      cacheImage: "debian-12-0123456789ab",
      bootDisk: null,
      drives: [],
      cpus: 2,
      memoryMiB: 256,
      diskGiB: null,
      min: { memoryMiB: 256 },
      max: { cpus: 2 },
      kernelParams: ["quiet"],
      hypervEnlightenments: false,
      guestChannel: "auto",
      cloudInit: null,
    });
    const bare = buildSpec("linux", undefined, "debian-12", corralImage, {});
    expect(bare).toMatchObject({ cpus: 2, memoryMiB: 1024, min: {}, max: {} });
    const windows = buildSpec("windows", undefined, undefined, { kind: "none" }, {});
    expect(windows).toMatchObject({ machineType: "q35", firmware: "uefi", memoryMiB: 4096 });
  });

  it("attaches an imported ISO as a CD-ROM and boots an imported disk", () => {
    const iso = buildSpec(
      "windows",
      undefined,
      "win11",
      { kind: "iso", path: "/srv/win11.iso", storeImageId: "I" },
      { diskGiB: 64 },
    );
    expect(iso).toMatchObject({
      drives: [{ path: "/srv/win11.iso", media: "cdrom", readOnly: true }],
      bootDisk: null,
      cacheImage: null,
      diskGiB: 64,
    });
    const disk = buildSpec(
      "linux",
      undefined,
      "ubuntu",
      { kind: "disk", path: "/srv/ubuntu.qcow2", format: "qcow2", storeImageId: "I" },
      {},
    );
    expect(disk.bootDisk).toEqual({ path: "/srv/ubuntu.qcow2", format: "qcow2" });
    expect(hasBackdoorShell(disk)).toBe(false);
    expect(hasBackdoorShell(buildSpec("linux", small, "debian-12", corralImage, {}))).toBe(true);
  });

  it("refuses a size outside the template's limits, naming each", () => {
    expect(() =>
      buildSpec("linux", small, "debian-12", corralImage, { cpus: 3, memoryMiB: 128 }),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message:
          "template small allows at most 2 vCPUs; asked: 3 (cpus)\ntemplate small needs at least 256 MiB of memory; asked: 128 (memoryMiB)",
      }),
    );
  });
});

describe("machineOptionsFor", () => {
  it("makes a persistent machine in the VM's folder, booting its own disk when it has one", () => {
    const spec = {
      ...buildSpec("linux", small, "debian-12", corralImage, {}),
      rootDisk: "/srv/vms/A/disk.qcow2",
    };
    expect(machineOptionsFor({ name: "web", stateDir: "/srv/vms/A", spec })).toEqual({
      name: "web",
      ownership: "persistent",
      guestAgent: true,
      stateDir: "/srv/vms/A",
      keepState: true,
      backend: "qemu",
      image: "debian-12-0123456789ab",
      cpus: 1,
      memoryMiB: 256,
      kernelParams: ["quiet"],
      rootDisk: "/srv/vms/A/disk.qcow2",
    });
  });

  it("refuses, naming each, what Machine cannot start yet", () => {
    const spec = buildSpec("windows", undefined, undefined, { kind: "none" }, {});
    expect(() => machineOptionsFor({ name: "win", stateDir: "/srv/vms/W", spec })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.UNSUPPORTED,
        message:
          'VM "win": this corral cannot start VMs with machine type q35, firmware uefi, an empty disk without an image yet',
      }),
    );
  });
});

describe("snapshotNameNow", () => {
  it("names a snapshot after the time, in UTC, sortable", () => {
    expect(snapshotNameNow(new Date("2025-01-31T23:59:58.123Z"))).toBe("20250131-235958-123");
  });
});

describe("parseBlockstats", () => {
  it("reads QEMU's info blockstats, one entry per device with counters", () => {
    const text = [
      "root: rd_bytes=24335872 wr_bytes=524288 rd_operations=643 wr_operations=27 flush_operations=6 wr_total_time_ns=16558099",
      "ide1-cd0: rd_bytes=0 wr_bytes=0 rd_operations=0 wr_operations=0 flush_operations=0",
      "",
      "not a device line",
    ].join("\r\n");
    expect(parseBlockstats(text)).toEqual([
      { device: "root", readBytes: 24335872, writtenBytes: 524288, readOps: 643, writeOps: 27 },
      { device: "ide1-cd0", readBytes: 0, writtenBytes: 0, readOps: 0, writeOps: 0 },
    ]);
  });
});
