// The host CPU's TSC rate, which a guest under TCG sees as its own TSC's (QEMU's TCG reads the
// host's counter). A guest without an HPET or ACPI PM timer (a microvm) cannot calibrate it
// reliably under emulation, so it is told.

import { readFileSync } from "node:fs";

let cached: number | undefined | null = null;

/**
 * The host's TSC rate in kHz, from /proc/cpuinfo: exact on virtual machines and on CPUs without
 * frequency scaling (where "cpu MHz" is the TSC's rate), close to it elsewhere. Undefined when
 * /proc/cpuinfo does not say.
 */
export function hostTscKhz(): number | undefined {
  if (cached === null) {
    let text = "";
    try {
      text = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      // not Linux, or no /proc: unknown
    }
    const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(text)?.[1];
    cached = mhz ? Math.round(Number(mhz) * 1000) : undefined;
  }
  return cached;
}
