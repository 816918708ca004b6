// Rebooting by ending the VM: the guest shuts down cleanly, its VMM is ended once the guest is
// past unmounting its disks, and the caller starts the VM again from the same disk. A warm reset
// is not reliable with several vCPUs under TCG: the guest kernel can hang in its last steps or
// after the reset.

import type { RunningVm } from "../backends/backend.ts";
import type { ConsoleLog } from "../backends/console-log.ts";
import type { Deadline } from "../deadline.ts";
import { UnsupportedError } from "../errors.ts";

/** How long a rebooting guest that said "reboot: Restarting system" gets before its VMM ends. */
const RESET_GRACE_MS = 3000;
/** The same, from systemd's last message ("Shutting down.") before the kernel's reboot. */
const SHUTDOWN_GRACE_MS = 10_000;

/** Runs `sendReboot` (the guest's `reboot`) and waits until `vm` has ended. */
export async function rebootToEnd(
  vm: RunningVm,
  console: ConsoleLog,
  deadline: Deadline,
  sendReboot: () => Promise<void>,
): Promise<void> {
  const control = vm.ability("reboot");
  if (!control) throw new UnsupportedError(vm.backend, "reboot", deadline.what);
  // This reboot ends the VMM even when the machine lets the guest reboot by itself.
  await control.setRebootAllowed(deadline, false);
  let fallback: NodeJS.Timeout | undefined;
  const stopWatching = console.onLine((line) => {
    const graceMs = /reboot: Restarting system/.test(line)
      ? RESET_GRACE_MS
      : /systemd\[1\]: Shutting down\.$/.test(line)
        ? SHUTDOWN_GRACE_MS
        : undefined;
    if (graceMs === undefined) return;
    clearTimeout(fallback);
    // By then the disks are unmounted or read-only: ending the VMM loses nothing.
    fallback = setTimeout(() => void vm.stop(), graceMs);
  });
  try {
    deadline.step("guest: reboot");
    await sendReboot();
    await vm.scope.untilExit(deadline);
  } finally {
    stopWatching();
    clearTimeout(fallback);
  }
}
