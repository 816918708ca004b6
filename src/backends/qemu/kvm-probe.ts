// Whether KVM works here, QEMU's way: boot a guest kernel under KVM with no root disk; a working
// KVM reaches the kernel's "no root" panic within seconds, a broken one hangs or QEMU aborts.

import type { AcceleratorProbe } from "../../host/accelerator.ts";
import { SupervisedProcess } from "../../host/supervised-process.ts";
import { qemuVersion } from "./qemu-version.ts";

const PROBE_TIMEOUT_MS = 8000;
const PANIC_TEXT = "Kernel panic";

export const qemuAcceleratorProbe: AcceleratorProbe = { vmmVersion: qemuVersion, probeKvm };

/** Boots `kernel` under KVM with no root disk: a working KVM reaches the "no root" panic fast. */
async function probeKvm(kernel: string): Promise<{ works: boolean; reason: string }> {
  const started = performance.now();
  const qemu = await SupervisedProcess.spawn(
    "qemu-system-x86_64",
    [
      ...["-accel", "kvm", "-cpu", "host", "-m", "128", "-nodefaults", "-no-user-config"],
      ...["-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", kernel],
      ...["-append", "console=ttyS0 panic=-1 loglevel=4"],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await using _ = qemu;
  let serial = "";
  let stderr = "";
  const panicked = new Promise<void>((resolve) => {
    qemu.child.stdout?.on("data", (chunk: Buffer) => {
      serial = (serial + chunk.toString("latin1")).slice(-4096);
      if (serial.includes(PANIC_TEXT)) resolve();
    });
  });
  qemu.child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timeout = new Promise<"timeout">((resolve) =>
    setTimeout(resolve, PROBE_TIMEOUT_MS, "timeout").unref(),
  );
  const outcome = await Promise.race([
    panicked.then(() => "booted" as const),
    qemu.exited,
    timeout,
  ]);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (outcome === "booted") {
    return { works: true, reason: `a guest kernel booted under KVM in ${seconds} s` };
  }
  if (outcome === "timeout") {
    return {
      works: false,
      reason: `a guest kernel hung under KVM (no panic after ${PROBE_TIMEOUT_MS / 1000} s)`,
    };
  }
  const lastError = stderr.trim().split("\n").at(-1) ?? "";
  return { works: false, reason: `QEMU failed under KVM: ${lastError || "exited early"}` };
}
