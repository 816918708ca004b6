// The test driver's machines for other test runners (vitest, node:test):
// `await using vms = await startMachines({ server: {}, client: {} })`.

import { AbortedError } from "../errors.ts";
import type { Accelerator } from "../host/accelerator.ts";
import type { Machine } from "../machine/machine.ts";
import { Driver, type DriverContext } from "./driver.ts";
import { DriverLog } from "./driver-log.ts";
import type { MachineSpec } from "./test-definition.ts";

export interface StartMachinesOptions {
  /** VLANs to create besides those the machines join. */
  vlans?: number[];
  accel?: Accelerator;
  /** Folder for events.jsonl and the console logs; none by default. */
  outputDir?: string;
  /** Show serial console lines on stderr (default false; they are always in `consoleLines`). */
  serialStdout?: boolean;
  /** Restore from boot snapshots, saving them when missing (see `corral test --reuse-boot`). */
  reuseBoot?: boolean;
  /**
   * Aborting it (vitest's test context has one that fires when the test times out) stops every
   * machine and switch and removes their state, as disposing does; pending and later verbs
   * reject with CORRAL_ABORTED. It also cancels image builds and boots in progress.
   */
  signal?: AbortSignal;
}

export type StartedMachines<Names extends string> = DriverContext & {
  readonly [K in Names]: Machine;
} & AsyncDisposable;

/**
 * Creates the machines and their VLANs and starts every machine (they boot in parallel; verbs
 * wait for the guest's shell). Dispose the result, or abort `signal`, to stop them all and
 * remove their state. Throws CORRAL_ABORTED when `signal` fires before they are started.
 */
export async function startMachines<const Machines extends Record<string, MachineSpec>>(
  machines: Machines,
  options: StartMachinesOptions = {},
): Promise<StartedMachines<Extract<keyof Machines, string>>> {
  const log = new DriverLog(options.outputDir ? { outputDir: options.outputDir } : {});
  log.serialStdout = options.serialStdout ?? false;
  const driver = await Driver.create({
    machines,
    ...(options.vlans ? { vlans: options.vlans } : {}),
    ...(options.accel ? { accel: options.accel } : {}),
    ...(options.outputDir ? { outputDir: options.outputDir } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.reuseBoot ? { reuseBoot: true } : {}),
    log,
  });
  const { signal } = options;
  let disposing: Promise<void> | undefined;
  const dispose = () => {
    disposing ??= (async () => {
      signal?.removeEventListener("abort", onAbort);
      await driver[Symbol.asyncDispose]();
      await log.close();
    })();
    return disposing;
  };
  const onAbort = () => {
    driver.abort(
      new AbortedError("startMachines: the signal was aborted", { cause: signal?.reason }),
    );
    // Whoever disposes later gets this same promise, and its error if any.
    dispose().catch(() => undefined);
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await driver.startAll();
  } catch (error) {
    await dispose();
    throw error;
  }
  return Object.assign(driver.context(), {
    [Symbol.asyncDispose]: dispose,
  }) as unknown as StartedMachines<Extract<keyof Machines, string>>;
}
