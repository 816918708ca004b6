// What a test file declares: its machines, and the function that drives them.

import type { Machine } from "../machine/machine.ts";
import {
  type FieldRule,
  MACHINE_OPTION_RULES,
  VLAN_NUMBERS_RULE,
  validateFields,
} from "../machine/validate-options.ts";
import type { DriverContext } from "./driver.ts";

/** A machine of a test: from an image (default: debian-12) or a `run-<name>-vm` start script. */
export interface MachineSpec {
  /** Recipe name or image id; default `debian-12`. */
  image?: string;
  /** A `run-<name>-vm` start script instead of an image. */
  startScript?: string;
  /** Memory in MiB, at least 64 (default: the image's). */
  memoryMiB?: number;
  /** Virtual CPUs, 1–255 (default: the image's). */
  cpus?: number;
  /** VLANs the machine joins; default `[1]`, as in NixOS tests. */
  vlans?: number[];
  /** Keep the VM running across a guest-initiated reboot. */
  allowReboot?: boolean;
  /** Give the guest qemu-ga's port (`Machine.guestAgent()`); default false. */
  guestAgent?: boolean;
  /** Extra environment for the start script (`QEMU_OPTS`, `QEMU_KERNEL_PARAMS`…). */
  env?: Record<string, string>;
}

const { image, startScript, memoryMiB, cpus, allowReboot, guestAgent, env } = MACHINE_OPTION_RULES;
/** Every field of a machine spec, with its rule. */
const SPEC_RULES: { readonly [K in keyof MachineSpec]-?: FieldRule } = {
  image,
  startScript,
  memoryMiB,
  cpus,
  vlans: VLAN_NUMBERS_RULE,
  allowReboot,
  guestAgent,
  env,
};

/** Throws CORRAL_INVALID_ARGUMENT naming the machine and the field of `spec` that is wrong. */
export function checkMachineSpec(name: string, spec: MachineSpec): void {
  validateFields(`machine ${JSON.stringify(name)}`, spec, SPEC_RULES);
}

/** The context a test receives: the driver's helpers, and each machine under its name. */
export type TestContext<Names extends string = string> = DriverContext & {
  readonly [K in Names]: Machine;
};

export type TestFunction<Names extends string = string> = (
  context: TestContext<Names>,
) => Promise<void>;

export interface TestSettings<Machines extends Record<string, MachineSpec>> {
  machines: Machines;
  /** Seconds before the whole test is stopped (default: the CLI's `--global-timeout`). */
  globalTimeout?: number;
  /** Restore machines from their boot snapshots, saving them on the first run (`--reuse-boot`). */
  reuseBoot?: boolean;
}

const TEST_DEFINITION = Symbol.for("corral.testDefinition");

export interface TestDefinition {
  readonly [TEST_DEFINITION]: true;
  readonly machines: Readonly<Record<string, MachineSpec>>;
  readonly globalTimeout: number | undefined;
  readonly reuseBoot: boolean;
  readonly run: TestFunction;
}

/**
 * Declares a test's machines and its body; the default export of a test file. The body's context
 * has each declared machine under its name (completed by the editor).
 *
 * ```ts
 * export default defineTest({ machines: { server: {}, client: {} } }, async ({ server, client }) => {
 *   await server.waitForUnit("multi-user.target");
 * });
 * ```
 */
export function defineTest<const Machines extends Record<string, MachineSpec>>(
  settings: TestSettings<Machines>,
  run: TestFunction<Extract<keyof Machines, string>>,
): TestDefinition {
  return {
    [TEST_DEFINITION]: true,
    machines: settings.machines,
    globalTimeout: settings.globalTimeout,
    reuseBoot: settings.reuseBoot ?? false,
    run: run as TestFunction,
  };
}

export function isTestDefinition(value: unknown): value is TestDefinition {
  return typeof value === "object" && value !== null && TEST_DEFINITION in value;
}
