// `corral doctor`: prints what the host has and lacks, and which accelerator VMs will use.

import { dirname } from "node:path";
import type { Command } from "commander";
import { reportBackends } from "../backends/backend-report.ts";
import { allBackends, findBackend } from "../backends/registry.ts";
import { diagnoseHost, installMissingPackages } from "../host/doctor.ts";
import { checkRequirements } from "../host/requirements.ts";
import { defaultProbeKernel } from "../images/image-cache.ts";
import { ensureVmlinux } from "../images/image-vmlinux.ts";
import { formatTable } from "./table.ts";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description(
      "check the host: required programs and files, whether KVM works (else TCG), and each backend (qemu, firecracker, cloud-hypervisor)",
    )
    .option("--json", "print the report as JSON")
    .option("--reprobe", "probe KVM again instead of using the cached verdict")
    .option("--install", "install the missing Debian packages with apt-get (as root)")
    .action(async (options: { json?: boolean; reprobe?: boolean; install?: boolean }) => {
      if (options.install) {
        const installed = await installMissingPackages();
        if (installed.length > 0)
          process.stderr.write(`corral: installed ${installed.join(" ")}\n`);
      }
      const backend = findBackend();
      const probeKernel = await defaultProbeKernel();
      const report = await diagnoseHost({
        reprobe: options.reprobe ?? false,
        probeKernel,
        probe: backend.acceleratorProbe,
        probeNeeds: backend.hostTools,
      });
      await deriveProbeVmlinux(probeKernel);
      const backends = await reportBackends({ reprobe: options.reprobe ?? false, probeKernel });
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ ...report, backends }, null, 2)}\n`);
      } else {
        const rows = report.requirements.map((req) => [
          req.id,
          req.isPresent ? "ok" : req.isOptional ? "missing" : "MISSING",
          req.isPresent ? req.detail : `${req.detail} (Debian package ${req.debianPackage})`,
        ]);
        const accel = report.accelerator;
        rows.push([
          "accelerator",
          accel ? accel.accelerator : "unknown",
          accel
            ? accelSentence(accel.accelerator, accel.isKvmUsable, accel.reason)
            : `not probed: ${backend.hostTools.join(" or ")} is missing`,
        ]);
        rows.push([
          "networks",
          report.networks.isAvailable ? "bridged" : "user-mode",
          report.networks.isAvailable
            ? `the manager's VMs get bridged networks (${report.networks.reason})`
            : `the manager's VMs get user-mode networking (port forwards as QEMU hostfwd rules): ${report.networks.reason}`,
        ]);
        for (const each of backends) {
          const found = each.binary.isFound
            ? `${each.version ?? "version unknown"} at ${each.binary.detail}; KVM: ${each.kvmReason}`
            : each.binary.detail;
          rows.push([
            `backend ${each.name}`,
            each.isUsable ? "ok" : "unavailable",
            each.isUsable ? `${each.reason} (${found})` : `${each.reason}; KVM: ${each.kvmReason}`,
          ]);
        }
        process.stdout.write(`${formatTable(["CHECK", "STATUS", "DETAIL"], rows)}\n`);
        if (report.fix) {
          const what = report.isReady ? "Something optional" : "Something required";
          process.stdout.write(`\n${what} is missing. Fix it with:\n  ${report.fix}\n`);
        }
      }
      process.exitCode = report.isReady ? 0 : 1;
    });
}

function accelSentence(
  accelerator: string,
  isKvmUsable: boolean | undefined,
  reason: string,
): string {
  if (accelerator === "kvm") return `KVM works (${reason})`;
  if (isKvmUsable === false) return `KVM is unusable: ${reason}; TCG will be used`;
  return `${reason}; TCG will be used`;
}

/**
 * A micro-VM backend whose VMM is installed probes KVM with the image's uncompressed kernel:
 * derived here when missing; when that fails, the backend's report says it has none.
 */
async function deriveProbeVmlinux(probeKernel: string | undefined): Promise<void> {
  if (!probeKernel) return;
  const installed = allBackends().filter(
    (backend) => backend.bootsVmlinux && checkRequirements([backend.hostTools[0]])[0]?.isPresent,
  );
  if (installed.length > 0) await ensureVmlinux(dirname(probeKernel)).catch(() => undefined);
}
