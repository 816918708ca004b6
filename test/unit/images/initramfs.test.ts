import { describe, expect, it } from "vitest";
import { moduleLoadOrder, parseModulesDep } from "../../../src/images/initramfs.ts";

const MODULES_DEP = `kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
`;

describe("moduleLoadOrder", () => {
  it("loads each dependency once, before the modules that need it", () => {
    const order = moduleLoadOrder(parseModulesDep(MODULES_DEP), [
      "virtio_pci",
      "virtio_blk",
      "virtio-console",
    ]);
    expect(order).toEqual([
      "kernel/drivers/virtio/virtio.ko",
      "kernel/drivers/virtio/virtio_ring.ko",
      "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
      "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
      "kernel/drivers/virtio/virtio_pci.ko",
      "kernel/drivers/block/virtio_blk.ko",
      "kernel/drivers/char/virtio_console.ko",
    ]);
  });

  it("names a module that is not there", () => {
    expect(() => moduleLoadOrder(parseModulesDep(MODULES_DEP), ["nvme"])).toThrow(/nvme not found/);
  });
});
