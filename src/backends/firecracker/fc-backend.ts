// The Firecracker backend: microVMs booted from a corral image's uncompressed kernel, initrd and
// a raw copy of its root disk, configured over Firecracker's API socket, with the guest's ports
// on hybrid vsock. Built against the official API spec; not yet run on a real Firecracker.

import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AcceleratorProbe } from "../../host/accelerator.ts";
import type { Backend } from "../backend.ts";
import { PROBE_CMDLINE, probeByBooting, probeWithVmlinux, vmmVersion } from "../micro-vm-probe.ts";
import { createFcDisk, firecrackerBinary, isQcow2 } from "./fc-disks.ts";
import { attachFirecracker, FC_CAPABILITIES, launchFirecracker } from "./fc-launch.ts";

const fcAcceleratorProbe: AcceleratorProbe = {
  vmmVersion: () => vmmVersion(firecrackerBinary()),
  probeKvm: (kernel) =>
    probeWithVmlinux(kernel, async (vmlinux) => {
      // Without the API: the whole configuration from a file (`--no-api --config-file`).
      const config = join(tmpdir(), `corral-fc-probe-${process.pid}.json`);
      await writeFile(
        config,
        JSON.stringify({
          "boot-source": { kernel_image_path: vmlinux, boot_args: PROBE_CMDLINE },
          "machine-config": { vcpu_count: 1, mem_size_mib: 128 },
        }),
      );
      try {
        return await probeByBooting("Firecracker", firecrackerBinary(), [
          ...["--no-api", "--config-file", config],
        ]);
      } finally {
        await rm(config, { force: true });
      }
    }),
};

export const firecrackerBackend: Backend = {
  name: "firecracker",
  capabilities: FC_CAPABILITIES,
  bootsVmlinux: true,
  hostTools: ["firecracker", "qemu-img"],
  version: () => vmmVersion(firecrackerBinary()),
  acceleratorProbe: fcAcceleratorProbe,
  // Firecracker has no copy-on-write disks: an "overlay" is a full (reflinked or sparse) copy.
  async createOverlay(base, path) {
    const format = (await isQcow2(base)) ? "qcow2" : "raw";
    await createFcDisk(path, { base: { path: base, format } });
  },
  createDisk: (path, options) => createFcDisk(path, options),
  capabilitiesFor: () => FC_CAPABILITIES,
  start: (spec, console) => launchFirecracker(spec, console),
  restore: (spec, console, saved) => launchFirecracker(spec, console, saved.state),
  attach: (record, console) => attachFirecracker(record, console),
};
