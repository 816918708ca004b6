// Powering a VM off through its ACPI power button, as a host's button would: the guest shuts down
// its own way (systemd-logind on corral's images, Windows' power button action). The button is
// pressed again every few seconds, since a press before the guest's handler runs (early boot) is
// lost; a VM still running when the grace period ends is forced off by the caller.

import type { Abilities, RunningVm } from "../backends/backend.ts";
import { type Deadline, setLongTimeout } from "../deadline.ts";

/** How often the button is pressed again while the guest has not ended. */
const PRESS_AGAIN_MS = 5000;

/** What powerDown() did. */
export interface PowerDownResult {
  /** True when the guest did not power off within the grace period and the VM was forced off. */
  isForced: boolean;
  /** Milliseconds from the first press until the VM had ended. */
  elapsedMs: number;
}

/**
 * Resumes `vm` if it is paused (a paused guest cannot see the button), presses the button, and
 * waits up to `graceMs` (at most what is left of `deadline`) for the VM to end. Returns whether
 * it ended; throws the deadline's error when the caller aborts.
 */
export async function pressUntilOff(
  vm: RunningVm,
  button: Abilities["power-button"],
  deadline: Deadline,
  graceMs: number,
): Promise<boolean> {
  if (await vm.isPaused(deadline)) {
    deadline.step("resuming the paused VM, so that its guest sees the button");
    await vm.resume(deadline);
  }
  const press = () =>
    button.pressPowerButton(deadline).catch((error: unknown) => {
      // The VM may end while the press is on its way: that is what was asked for.
      if (!vm.exitInfo) throw error;
    });
  deadline.step("pressing the ACPI power button");
  await press();
  const again = setInterval(() => void press().catch(() => undefined), PRESS_AGAIN_MS);
  let cancelGrace = () => {};
  const graceOver = new Promise<boolean>((resolve) => {
    cancelGrace = setLongTimeout(() => resolve(false), Math.min(graceMs, deadline.remainingMs));
  });
  try {
    return await deadline.race(Promise.race([vm.exited.then(() => true), graceOver]));
  } finally {
    clearInterval(again);
    cancelGrace();
  }
}
