import { describe, expect, it } from "vitest";
import type { VmSpec } from "../../../../src/backends/backend.ts";
import { guestMemoryFor, memoryArgs } from "../../../../src/backends/qemu/memory-backend.ts";

const image = {
  kind: "image",
  imageId: "debian-12-abc",
  recipeHash: "abc",
  dir: "/img",
  startScript: "/img/run-debian-12-vm",
  kernel: "/img/vmlinuz",
  direct: {
    initrd: "/img/initrd",
    rootDisk: "/img/root.qcow2",
    kernelParams: "",
    memoryMiB: 1024,
    cpus: 2,
  },
} as const;

function spec(overrides: Partial<VmSpec>): VmSpec {
  return {
    name: "t",
    stateDir: "/state",
    ownership: "owned",
    boot: image,
    accelerator: "tcg",
    nics: [],
    kernelParams: [],
    allowReboot: false,
    env: {},
    ...overrides,
  };
}

describe("guestMemoryFor", () => {
  it("is a shared memfd of the machine's memory, or the image's, or a disk boot's default", () => {
    expect(guestMemoryFor(spec({ memoryMiB: 512 }))).toEqual({ kind: "shared", sizeMiB: 512 });
    expect(guestMemoryFor(spec({}))).toEqual({ kind: "shared", sizeMiB: 1024 });
    expect(guestMemoryFor(spec({ boot: { kind: "disk" } }))).toEqual({
      kind: "shared",
      sizeMiB: 1024,
    });
  });

  it("leaves a Nix start script's RAM alone: its size and machine are its own", () => {
    expect(
      guestMemoryFor(spec({ boot: { kind: "start-script", path: "/x/run-vm" }, memoryMiB: 512 })),
    ).toBeUndefined();
  });
});

describe("memoryArgs", () => {
  it("names the backend as QEMU names its own RAM, and maps a snapshot's file privately", () => {
    expect(memoryArgs({ kind: "shared", sizeMiB: 512 }, "pc")).toEqual([
      ...["-m", "512", "-object", "memory-backend-memfd,id=pc.ram,size=512M,share=on"],
      ...["-machine", "memory-backend=pc.ram"],
    ]);
    expect(memoryArgs({ kind: "mapped", sizeMiB: 256, path: "/s,x/memory" }, "microvm")).toEqual([
      "-m",
      "256",
      "-object",
      "memory-backend-file,id=microvm.ram,size=256M,share=off,mem-path=/s,,x/memory",
      "-machine",
      "memory-backend=microvm.ram",
    ]);
  });
});
