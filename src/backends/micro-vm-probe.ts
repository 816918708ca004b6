// Whether KVM works for Firecracker or Cloud Hypervisor, the way the QEMU backend finds out:
// boot the image's uncompressed kernel with no root disk; a working KVM reaches the kernel's
// "no root" panic within seconds. Also each VMM's version line, read once per binary.

import { access } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runProgram } from "../host/run-program.ts";
import { SupervisedProcess } from "../host/supervised-process.ts";
import { VMLINUX } from "./micro-vm-spec.ts";

const PROBE_TIMEOUT_MS = 8000;
const PANIC_TEXT = "Kernel panic";
/** The kernel command line of a probe: the serial console, and no reboot after the panic. */
export const PROBE_CMDLINE = "console=ttyS0 panic=-1 loglevel=4 reboot=k";

const versions = new Map<string, Promise<string>>();

/** The first line of `<binary> --version`, e.g. "Firecracker v1.12.0". */
export function vmmVersion(binary: string): Promise<string> {
  let version = versions.get(binary);
  if (!version) {
    version = runProgram(binary, ["--version"]).then(
      ({ stdout }) => stdout.split("\n")[0]?.trim() ?? "",
    );
    versions.set(binary, version);
  }
  return version;
}

/**
 * Runs `probe` with the uncompressed kernel beside the image's `kernel` (vmlinuz); when the image
 * has none, KVM cannot be probed and the verdict says so.
 */
export async function probeWithVmlinux(
  kernel: string,
  probe: (vmlinux: string) => Promise<{ works: boolean; reason: string }>,
): Promise<{ works: boolean; reason: string }> {
  const vmlinux = join(dirname(kernel), VMLINUX);
  const exists = await access(vmlinux).then(
    () => true,
    () => false,
  );
  return exists
    ? probe(vmlinux)
    : { works: false, reason: `no uncompressed kernel (vmlinux) beside ${kernel} to probe with` };
}

/**
 * Runs `file args…` (a VMM booting a kernel with no root disk, its serial console on stdout)
 * and says whether the kernel reached its panic before the limit.
 */
export async function probeByBooting(
  vmm: string,
  file: string,
  args: readonly string[],
): Promise<{ works: boolean; reason: string }> {
  const started = performance.now();
  const child = await SupervisedProcess.spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
  await using _ = child;
  let serial = "";
  let stderr = "";
  const panicked = new Promise<void>((resolve) => {
    child.child.stdout?.on("data", (chunk: Buffer) => {
      serial = (serial + chunk.toString("latin1")).slice(-4096);
      if (serial.includes(PANIC_TEXT)) resolve();
    });
  });
  child.child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4096);
  });
  const timeout = new Promise<"timeout">((resolve) =>
    setTimeout(resolve, PROBE_TIMEOUT_MS, "timeout").unref(),
  );
  const outcome = await Promise.race([
    panicked.then(() => "booted" as const),
    child.exited,
    timeout,
  ]);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (outcome === "booted") {
    return { works: true, reason: `a guest kernel booted under ${vmm} with KVM in ${seconds} s` };
  }
  if (outcome === "timeout") {
    return {
      works: false,
      reason: `a guest kernel hung under ${vmm} (no panic after ${PROBE_TIMEOUT_MS / 1000} s)`,
    };
  }
  const lastLine = (stderr || serial).trim().split("\n").at(-1) ?? "";
  return { works: false, reason: `${vmm} failed: ${lastLine || "exited early"}` };
}
