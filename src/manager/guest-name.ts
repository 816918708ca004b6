// A Linux VM reached only through qemu-ga (no backdoor shell) and not named by a cloud-init seed
// still gets its VM's name as its host name: once its agent answers, `hostname`, /etc/hostname
// and the 127.0.1.1 line of /etc/hosts, by guest-exec. In the background: a VM without a shell
// is running as soon as its VMM is, and its agent may answer a minute later.

import { Deadline } from "../deadline.ts";
import type { Machine } from "../machine/machine.ts";
import type { Vm } from "../store/vm-types.ts";
import type { VmContext } from "./vm-context.ts";
import { hasBackdoorShell, type ManagedSpec } from "./vm-spec.ts";

/** How long the guest's agent may take to answer after the VMM started. */
const AGENT_TIMEOUT_MS = 300_000;
/** How long the naming command may take once the agent answers. */
const NAMING_TIMEOUT_MS = 60_000;

/**
 * Sets the host name: $1. POSIX sh (the image may have no bash), `hostname` where there is one
 * (else the kernel's file), and /etc/hosts' 127.0.1.1 line as Debian's installer writes it.
 */
const NAMING_SCRIPT = [
  'hostname "$1" 2>/dev/null || echo "$1" > /proc/sys/kernel/hostname || exit 1',
  'echo "$1" > /etc/hostname || exit 1',
  "if grep -q '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then",
  '  sed -i "s/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1\\t$1/" /etc/hosts',
  "else",
  "  printf '127.0.1.1\\t%s\\n' \"$1\" >> /etc/hosts",
  "fi",
].join("\n");

/** Whether VM `vm` is named through its agent: Linux, no backdoor shell, no cloud-init seed. */
export function isNamedThroughAgent(vm: Pick<Vm, "os" | "spec">): boolean {
  const spec = vm.spec as unknown as ManagedSpec;
  return vm.os === "linux" && !hasBackdoorShell(spec) && !spec.cloudInit;
}

/**
 * Names the guest of `vm` (started on `machine`) after the VM once its agent answers, and
 * publishes `vm.hostname` `{ name, hostname }`, or `{ name, error }` when the agent did not
 * answer in 300 s or the command failed while the VM still ran. Never throws.
 */
export function nameThroughAgent(context: VmContext, vm: Vm, machine: Machine): void {
  void (async () => {
    try {
      const client = await machine.guestAgent({ timeout: AGENT_TIMEOUT_MS });
      const deadline = new Deadline(
        `VM "${vm.name}": setting its host name through qemu-ga`,
        { timeout: NAMING_TIMEOUT_MS },
        NAMING_TIMEOUT_MS,
      );
      const result = await client.exec(
        { path: "/bin/sh", args: ["-c", NAMING_SCRIPT, "sh", vm.name] },
        deadline,
      );
      if (result.exitCode !== 0) {
        throw new Error(
          `the naming command exited with ${result.exitCode}: ${result.stderr.toString().trim()}`,
        );
      }
      context.events.publish({
        type: "vm.hostname",
        vmId: vm.id,
        data: { name: vm.name, hostname: vm.name },
      });
    } catch (error) {
      // A VM stopped before its agent answered has nothing to report.
      if (machine.state !== "running" && machine.state !== "paused") return;
      context.events.publish({
        type: "vm.hostname",
        vmId: vm.id,
        data: { name: vm.name, error: error instanceof Error ? error.message : String(error) },
      });
    }
  })();
}
