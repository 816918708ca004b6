// Boot to the backdoor shell against a kernel-only boot of the same kernel (QEMU plus kernel,
// no userspace), measured in the same run; the last booted guest is handed on for guest verbs.

import { join } from "node:path";
import type { Accelerator } from "../src/host/accelerator.ts";
import { SupervisedProcess } from "../src/host/supervised-process.ts";
import { Machine } from "../src/machine/machine.ts";
import { log, median, results, timed } from "./measure.ts";

const BOOT_RUNS = 3;

/** Boots only the image's kernel (no root disk) until it panics. */
async function kernelOnlyBoot(kernel: string, accelerator: Accelerator): Promise<number> {
  const started = performance.now();
  const qemu = await SupervisedProcess.spawn("qemu-system-x86_64", [
    ...["-accel", accelerator, "-cpu", accelerator === "kvm" ? "host" : "max", "-m", "1024"],
    ...["-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot"],
    ...["-kernel", kernel, "-append", "console=ttyS0 panic=-1 quiet mitigations=off"],
  ]);
  await using _ = qemu;
  await new Promise<void>((resolve) => {
    qemu.child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("Kernel panic")) resolve();
    });
    void qemu.exited.then(() => resolve());
  });
  return performance.now() - started;
}

/** Measures both boots; calls `withGuest` with the last machine booted, before it is disposed. */
export async function benchBoot(
  imageDir: string,
  accelerator: Accelerator,
  withGuest: (machine: Machine) => Promise<void>,
): Promise<void> {
  log(`kernel-only boot (baseline), ${BOOT_RUNS} runs...`);
  const kernelBoots: number[] = [];
  for (let i = 0; i < BOOT_RUNS; i++) {
    kernelBoots.push(await kernelOnlyBoot(join(imageDir, "vmlinuz"), accelerator));
  }
  results.kernelOnlyBootMedianS = median(kernelBoots) / 1000;

  log(`boot to backdoor shell, ${BOOT_RUNS} runs...`);
  const boots: number[] = [];
  for (let i = 0; i < BOOT_RUNS; i++) {
    await using machine = new Machine();
    boots.push(await timed(() => machine.waitForShell()));
    if (i === BOOT_RUNS - 1) await withGuest(machine);
  }
  results.bootToShellMedianS = median(boots) / 1000;
  results.bootToShellVsKernelOnly = median(boots) / median(kernelBoots);
}
