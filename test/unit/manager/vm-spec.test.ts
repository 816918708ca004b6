// A managed VM's spec from a template, the OS's defaults and the request; the template's limits;
// the Machine options of a spec (and what Machine refuses of one); a snapshot's default name;
// QEMU's blockstats.

import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../../../src/errors.ts";
import type { TemplateDocument } from "../../../src/manager/template-schema.ts";
import { machineOptionsFor } from "../../../src/manager/vm-machine-options.ts";
import { snapshotNameNow } from "../../../src/manager/vm-snapshots.ts";
import { buildSpec, hasBackdoorShell, type ManagedSpec } from "../../../src/manager/vm-spec.ts";
import { parseBlockstats } from "../../../src/manager/vm-stats.ts";

const GIB = 2 ** 30;

const corralImage = {
  kind: "corral",
  cacheId: "debian-12-0123456789ab",
  storeImageId: null,
  diskBytes: 2 * GIB,
  hasCloudInit: false,
} as const;

const importedDisk = {
  kind: "disk",
  path: "/srv/ubuntu.qcow2",
  format: "qcow2",
  storeImageId: "I",
  diskBytes: 3.5 * GIB,
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
      networks: [],
    });
    const bare = buildSpec("linux", undefined, "debian-12", corralImage, {});
    expect(bare).toMatchObject({ cpus: 2, memoryMiB: 1024, min: {}, max: {} });
    const windows = buildSpec("windows", undefined, undefined, { kind: "none" }, {});
    expect(windows).toMatchObject({ machineType: "q35", firmware: "uefi", memoryMiB: 4096 });
    const onNetworks = { ...small, networks: ["corral0", "lab"] };
    expect(buildSpec("linux", onNetworks, "debian-12", corralImage, {}).networks).toEqual([
      "corral0",
      "lab",
    ]);
    expect(
      buildSpec("linux", onNetworks, "debian-12", corralImage, { networks: [] }).networks,
    ).toEqual([]);
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
    const disk = buildSpec("linux", undefined, "ubuntu", importedDisk, {});
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

  it("sizes the disk: the request's, at least the image's; the template's when the image fits", () => {
    const roomy: TemplateDocument = { ...small, diskGiB: 8 };
    expect(buildSpec("linux", roomy, "ubuntu", importedDisk, {}).diskGiB).toBe(8);
    expect(buildSpec("linux", { ...roomy, diskGiB: 3 }, "ubuntu", importedDisk, {}).diskGiB).toBe(
      null,
    );
    expect(buildSpec("linux", roomy, "ubuntu", importedDisk, { diskGiB: 4 }).diskGiB).toBe(4);
    expect(() => buildSpec("linux", roomy, "ubuntu", importedDisk, { diskGiB: 3 })).toThrow(
      expect.objectContaining({
        code: ErrorCodes.INVALID_ARGUMENT,
        message:
          "body/diskGiB is 3, smaller than the disk of image ubuntu (3.5 GiB): a disk only grows; ask for at least 4",
      }),
    );
  });

  it("gives a cloud image's VM a cloud-init seed, with or without the request's data", () => {
    const cloud = { ...corralImage, hasCloudInit: true };
    expect(buildSpec("linux", small, "debian-12-cloud", cloud, {}).cloudInit).toEqual({});
    const userData = "#cloud-config\n";
    expect(
      buildSpec("linux", small, "debian-12-cloud", cloud, { cloudInit: { userData } }).cloudInit,
    ).toEqual({ userData });
    expect(buildSpec("linux", small, "debian-12", corralImage, {}).cloudInit).toBe(null);
  });
});

const linuxDefault: TemplateDocument = {
  name: "linux-default",
  os: "linux",
  machineType: "pc",
  image: "debian-12",
  cpus: 1,
  memoryMiB: 512,
  diskGiB: 8,
  max: { cpus: 4, memoryMiB: 4096, diskGiB: 64 },
};

const windowsDefault: TemplateDocument = {
  name: "windows-default",
  os: "windows",
  machineType: "q35",
  firmware: "uefi",
  cpus: 2,
  memoryMiB: 4096,
  diskGiB: 64,
  min: { cpus: 2, memoryMiB: 1024, diskGiB: 32 },
  max: { cpus: 16, memoryMiB: 1_048_576, diskGiB: 1024 },
  hypervEnlightenments: true,
  guestChannel: "qga",
};

const at = (spec: ManagedSpec, options?: { isSnapshotStart?: boolean }) =>
  machineOptionsFor({ name: "web", stateDir: "/srv/vms/A", spec }, options);

describe("machineOptionsFor", () => {
  it("makes a persistent machine in the VM's folder, with its size, disk and headroom", () => {
    const spec = {
      ...buildSpec("linux", linuxDefault, "debian-12", corralImage, {}),
      rootDisk: "/srv/vms/A/disk.qcow2",
    };
    expect(at(spec)).toEqual({
      name: "web",
      ownership: "persistent",
      guestAgent: true,
      stateDir: "/srv/vms/A",
      keepState: true,
      backend: "qemu",
      image: "debian-12-0123456789ab",
      machineType: "pc",
      firmware: "bios",
      hypervEnlightenments: false,
      cpus: 1,
      memoryMiB: 512,
      maxCpus: 4,
      maxMemoryMiB: 4096,
      diskGiB: 8,
      rootDisk: "/srv/vms/A/disk.qcow2",
    });
    // From a snapshot, the disk is the snapshot's.
    expect(at(spec, { isSnapshotStart: true })).not.toHaveProperty("diskGiB");
    // No headroom where the template's max is the VM's size, or where there is none.
    const full = buildSpec("linux", linuxDefault, "debian-12", corralImage, { cpus: 4 });
    expect(at(full)).not.toHaveProperty("maxCpus");
    expect(at(buildSpec("linux", small, "debian-12", corralImage, {}))).toMatchObject({
      maxCpus: 2,
      kernelParams: ["quiet"],
    });
    expect(at(buildSpec("linux", small, "debian-12", corralImage, {}))).not.toHaveProperty(
      "maxMemoryMiB",
    );
  });

  it("gives a Windows VM q35, UEFI, Hyper-V and an empty disk, its install ISO as a CD-ROM", () => {
    const iso = { kind: "iso", path: "/srv/win11.iso", storeImageId: "W" } as const;
    const spec = buildSpec("windows", windowsDefault, "win11", iso, { memoryMiB: 2048 });
    expect(at(spec)).toMatchObject({
      image: null,
      machineType: "q35",
      firmware: "uefi",
      hypervEnlightenments: true,
      cpus: 2,
      memoryMiB: 2048,
      maxCpus: 16,
      // What Machine can plug, not the template's 1 TiB.
      maxMemoryMiB: 524_288,
      diskGiB: 64,
      drives: [{ path: "/srv/win11.iso", media: "cdrom", readOnly: true }],
    });
  });

  it("boots an imported disk by its firmware, and passes drives on", () => {
    const spec = buildSpec("linux", linuxDefault, "ubuntu", importedDisk, {
      drives: [{ path: "/srv/data.raw", media: "disk" }],
    });
    expect(at(spec)).toMatchObject({
      image: null,
      bootDisk: { path: "/srv/ubuntu.qcow2", format: "qcow2" },
      diskGiB: 8,
      drives: [{ path: "/srv/data.raw", media: "disk" }],
    });
  });

  it("attaches the VM's cloud-init seed: a CD-ROM on pc, a read-only virtio disk elsewhere", () => {
    const cloud = { ...corralImage, hasCloudInit: true };
    const pc = buildSpec("linux", linuxDefault, "debian-12-cloud", cloud, {});
    expect(at(pc).drives).toEqual([
      { path: "/srv/vms/A/seed.iso", media: "cdrom", readOnly: true },
    ]);
    const q35 = { ...pc, machineType: "q35" as const };
    expect(at(q35).drives).toEqual([
      { path: "/srv/vms/A/seed.iso", media: "disk", readOnly: true },
    ]);
  });

  it("gives a microvm no headroom: it has no bus to plug vCPUs or memory into", () => {
    const micro: TemplateDocument = { ...linuxDefault, name: "micro", machineType: "microvm" };
    const options = at(buildSpec("linux", micro, "debian-12", corralImage, {}));
    expect(options).toMatchObject({ machineType: "microvm", diskGiB: 8 });
    expect(options).not.toHaveProperty("maxCpus");
    expect(options).not.toHaveProperty("maxMemoryMiB");
  });

  it("refuses, as Machine does, what cannot be started, naming it", () => {
    const micro: TemplateDocument = { ...linuxDefault, name: "micro", machineType: "microvm" };
    const refusals: [ManagedSpec, string][] = [
      [
        buildSpec("linux", micro, "ubuntu", importedDisk, {}),
        "a microvm has no firmware to boot a disk with",
      ],
      [
        buildSpec("linux", small, "ubuntu", importedDisk, {}),
        "kernelParams need an image's kernel",
      ],
      [
        buildSpec("windows", undefined, undefined, { kind: "none" }, {}),
        "the VM boots an empty disk: give its size, diskGiB",
      ],
      [
        buildSpec("linux", linuxDefault, "debian-12", corralImage, {
          drives: [{ path: "/srv/a.iso", media: "cdrom", readOnly: false }],
        }),
        "drives[0] is a CD-ROM: always raw (an ISO) and read-only",
      ],
    ];
    for (const [spec, message] of refusals) {
      expect(() => at(spec)).toThrow(
        expect.objectContaining({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: expect.stringContaining(message),
        }),
      );
    }
  });
});

describe("snapshotNameNow", () => {
  it("names a snapshot after the time, in UTC, sortable", () => {
    expect(snapshotNameNow(new Date("2025-01-31T23:59:58.123Z"))).toBe("20250131-235958-123");
  });
});

describe("parseBlockstats", () => {
  it("reads QEMU's info blockstats, one entry per device with counters, not the transfer disk", () => {
    const text = [
      "root: rd_bytes=24335872 wr_bytes=524288 rd_operations=643 wr_operations=27 flush_operations=6 wr_total_time_ns=16558099",
      "ide1-cd0: rd_bytes=0 wr_bytes=0 rd_operations=0 wr_operations=0 flush_operations=0",
      "corral-xfer-disk: rd_bytes=4608 wr_bytes=0 rd_operations=2 wr_operations=0",
      "",
      "not a device line",
    ].join("\r\n");
    expect(parseBlockstats(text)).toEqual([
      { device: "root", readBytes: 24335872, writtenBytes: 524288, readOps: 643, writeOps: 27 },
      { device: "ide1-cd0", readBytes: 0, writtenBytes: 0, readOps: 0, writeOps: 0 },
    ]);
  });
});
