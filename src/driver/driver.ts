// The test driver: the machines and VLANs of one test, the helpers a test script uses, and the
// cleanup that leaves no VM, switch or socket behind.

import { constants } from "node:fs";
import { access, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { formatMs, requireTimeout, setLongTimeout } from "../deadline.ts";
import { AbortedError, CorralError, ErrorCodes, TimeoutError } from "../errors.ts";
import type { Accelerator } from "../host/accelerator.ts";
import { runtimeDir } from "../host/paths.ts";
import { VlanSwitch } from "../host/vlan-switch.ts";
import { createWatchedDir, releaseDir } from "../host/watchdog.ts";
import { ensureImage } from "../images/build-image.ts";
import { checkImageName } from "../images/image-cache.ts";
import { DEFAULT_RECIPE } from "../images/recipe.ts";
import { Machine } from "../machine/machine.ts";
import type { MachineOptions } from "../machine/machine-options.ts";
import { readManifest } from "../machine/snapshot-manifest.ts";
import { checkMachineName, checkVlan, isMachineName, vlanAddress } from "../network/addressing.ts";
import { bootSnapshotDir, saveBootSnapshot } from "./boot-snapshots.ts";
import { DriverLog } from "./driver-log.ts";
import type { JUnitCase } from "./junit.ts";
import { checkMachineSpec, type MachineSpec } from "./test-definition.ts";
import { traceMachine } from "./traced-machine.ts";

export interface DriverOptions {
  /** Machines declared by name (a test file's `defineTest`). */
  machines?: Readonly<Record<string, MachineSpec>>;
  /**
   * Start scripts, each one machine: a `run-<name>-vm` path names it after the script; a
   * `{ name, startScript }` (newer nixpkgs' `--vm-names`, `--config`) names it `name`.
   */
  startScripts?: readonly (string | NamedStartScript)[];
  /** VLANs to create besides those the declared machines join. */
  vlans?: readonly number[];
  /** Folder for events.jsonl, console logs and screenshots with a relative path. */
  outputDir?: string;
  /** Keep each machine's state (disk overlay) in $TMPDIR/corral-vm-state-<name> across runs. */
  keepVmState?: boolean;
  /**
   * With `keepVmState`, the state folders are $TMPDIR/corral-vm-state-<stateKey>-<name>, so that
   * tests run side by side with machines of the same name keep theirs apart.
   */
  stateKey?: string;
  accel?: Accelerator;
  /**
   * Restore each machine from its boot snapshot when the cache has one; otherwise startAll()
   * boots it and saves one for the next run.
   */
  reuseBoot?: boolean;
  log?: DriverLog;
  signal?: AbortSignal;
}

/** A start script and the name of its machine, as newer nixpkgs drivers are given them. */
export interface NamedStartScript {
  name: string;
  startScript: string;
}

export interface RetryOptions {
  /** Milliseconds before retry gives up; default 900 000; any size, `Infinity` for no limit. */
  timeout?: number;
  /** Milliseconds between attempts; default 1000. */
  interval?: number;
}

export interface PollingConditionOptions {
  /** Seconds between the end of a check and the next; default 2. */
  seconds?: number;
  /** Shown when the condition fails. */
  description?: string;
}

/** The helpers every test receives besides its machines. */
export interface DriverContext {
  readonly machines: readonly Machine[];
  /**
   * The test's only machine, as NixOS's `machine` for single-machine tests (unless a machine is
   * named `machine`: then that one). Throws CORRAL_NOT_FOUND when the test has none or several.
   */
  readonly machine: Machine;
  readonly vlans: readonly VlanSwitch[];
  readonly driver: Driver;
  startAll(): Promise<void>;
  joinAll(): Promise<void>;
  subtest<T>(name: string, fn: () => Promise<T>): Promise<T>;
  log(message: string): void;
  retry(
    fn: (lastTry: boolean) => boolean | Promise<boolean>,
    options?: RetryOptions,
  ): Promise<void>;
  pollingCondition(
    check: () => boolean | Promise<boolean>,
    options?: PollingConditionOptions,
  ): Disposable;
  serialStdout(on: boolean): void;
  createMachine(spec: MachineSpec & { name: string }): Machine;
}

/** The helpers in a test's context, beside its machines; no machine may take their names. */
export const CONTEXT_KEYS: ReadonlySet<string> = new Set([
  "machines",
  "vlans",
  "driver",
  "startAll",
  "joinAll",
  "subtest",
  "log",
  "retry",
  "pollingCondition",
  "serialStdout",
  "createMachine",
]);
/**
 * Keys that code probing any object reads (await, JSON.stringify, test runners' printers): the
 * context answers undefined for them, as a plain object would, instead of "no machine named".
 */
const PROBED_KEYS = new Set(["then", "toJSON", "nodeType", "asymmetricMatch"]);
const MAX_NODES = 254;
const RETRY_TIMEOUT_MS = 900_000;

interface Planned {
  name: string;
  spec: MachineSpec;
}

export class Driver implements AsyncDisposable {
  readonly log: DriverLog;
  readonly subtests: JUnitCase[] = [];
  readonly #options: DriverOptions;
  readonly #stateRoot: string;
  readonly #switches = new Map<number, VlanSwitch>();
  readonly #machines = new Map<string, Machine>();
  readonly #nodes = new Map<string, number>();
  /** Every machine's spec, with its VLANs filled in, known before any machine is created. */
  readonly #specs = new Map<string, MachineSpec>();
  readonly #conditions = new Set<Disposable>();
  readonly #failure = Promise.withResolvers<never>();
  /** Fires with the failure: the machines' pending verbs reject with it. */
  readonly #stop = new AbortController();
  /** Machines that boot this time, and where their boot snapshot goes once they are up. */
  readonly #bootSnapshotsToSave = new Map<Machine, string>();
  #context: DriverContext | undefined;
  /** Why verbs and helpers are refused from now on: the test failed, or the driver is disposed. */
  #stopped: { reason: string; cause?: unknown } | undefined;

  private constructor(options: DriverOptions, stateRoot: string, log: DriverLog) {
    this.#options = options;
    this.#stateRoot = stateRoot;
    this.log = log;
    this.#failure.promise.catch(() => undefined);
  }

  /**
   * Checks the machines and VLANs, builds missing images, starts the VLAN switches and creates
   * the machines (not started). Every configuration error is raised before anything starts.
   */
  static async create(options: DriverOptions): Promise<Driver> {
    const { planned, vlans } = await check(options);
    for (const { spec } of planned) {
      if (!spec.startScript)
        await ensureImage(spec.image ?? DEFAULT_RECIPE, { signal: options.signal });
    }
    const stateRoot = await createWatchedDir(join(runtimeDir(), "corral-test-"));
    const driver = new Driver(options, stateRoot, options.log ?? new DriverLog());
    try {
      for (const vlan of [...vlans].sort((a, b) => a - b)) {
        const vlanSwitch = await VlanSwitch.start(vlan, stateRoot);
        driver.#switches.set(vlan, vlanSwitch);
        void vlanSwitch.died.then((error) => driver.abort(error));
      }
      const names = planned.map(({ name }) => name).sort();
      for (const [index, name] of names.entries()) driver.#nodes.set(name, index + 1);
      for (const { name, spec } of planned) driver.#specs.set(name, spec);
      for (const { name, spec } of planned) await driver.#addMachine(name, spec);
    } catch (error) {
      await driver[Symbol.asyncDispose]();
      throw error;
    }
    return driver;
  }

  /** Runs the checks of `create` (machines, start scripts, VLANs) without creating anything. */
  static async check(options: DriverOptions): Promise<void> {
    await check(options);
  }

  get machines(): Machine[] {
    return [...this.#machines.values()];
  }

  get vlans(): VlanSwitch[] {
    return [...this.#switches.values()];
  }

  /**
   * Rejects when a polling condition fails, a VLAN's switch dies, or the driver is stopped with
   * `abort`.
   */
  get failed(): Promise<never> {
    return this.#failure.promise;
  }

  /**
   * Makes `failed` reject with `error`, and every pending verb of the machines: the running test
   * stops there. From then on every machine verb and helper of the test throws an AbortedError
   * without running. The first error wins.
   */
  abort(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.#stopped ??= { reason: `the test has stopped: ${message.split("\n")[0]}`, cause: error };
    this.#failure.reject(error);
    this.#stop.abort(error);
  }

  /** The error a verb or helper called `what` throws once the test has stopped; else undefined. */
  refusal(what: string): AbortedError | undefined {
    if (!this.#stopped) return undefined;
    return new AbortedError(`${what}: not run: ${this.#stopped.reason}`, {
      cause: this.#stopped.cause,
    });
  }

  machine(name: string): Machine {
    const machine = this.#machines.get(name);
    if (!machine) {
      throw new CorralError(
        ErrorCodes.NOT_FOUND,
        `no machine named ${JSON.stringify(name)}; machines: ${[...this.#machines.keys()].join(", ") || "none"}`,
      );
    }
    return machine;
  }

  /**
   * The context a test function receives: the helpers, and each machine under its name. Reading
   * a name that is neither (`const { servr } = context`) throws CORRAL_NOT_FOUND listing the
   * machines, at once rather than after the VMs have booted.
   */
  context(): DriverContext & Record<string, Machine> {
    this.#context ??= this.#guarded({
      machines: this.machines,
      vlans: this.vlans,
      driver: this,
      startAll: () => this.startAll(),
      joinAll: () => this.joinAll(),
      subtest: (name, fn) => this.subtest(name, fn),
      log: (message) => {
        this.#requireRunning("log");
        this.log.log(message);
      },
      retry: (fn, options) => this.retry(fn, options),
      pollingCondition: (check, options) => this.pollingCondition(check, options),
      serialStdout: (on) => {
        this.log.serialStdout = on;
      },
      createMachine: (spec) => this.createMachine(spec),
      // `machine` is answered by the proxy: reading it with several machines throws.
    } as Omit<DriverContext, "machine"> as DriverContext);
    return Object.assign(this.#context, Object.fromEntries(this.#machines));
  }

  #guarded(context: DriverContext): DriverContext {
    return new Proxy(context, {
      get: (target, key, receiver) => {
        if (key === "machine" && !this.#machines.has(key)) return this.#onlyMachine();
        if (typeof key === "symbol" || key in target || PROBED_KEYS.has(key) || !isMachineName(key))
          return Reflect.get(target, key, receiver);
        return this.machine(key);
      },
    });
  }

  #onlyMachine(): Machine {
    const machines = this.machines;
    if (machines.length === 1) return machines[0] as Machine;
    throw new CorralError(
      ErrorCodes.NOT_FOUND,
      `\`machine\` is the test's only machine, but this test has ${machines.length || "none"}${machines.length ? `: ${[...this.#machines.keys()].join(", ")}` : ""}; use their names`,
    );
  }

  /**
   * Starts every machine; they boot in parallel. With `reuseBoot`, a machine with no boot
   * snapshot yet is waited for and saved right after boot, before the test goes on.
   */
  async startAll(): Promise<void> {
    this.#requireRunning("startAll");
    await this.log.step("start all VMs", () =>
      Promise.all(this.machines.map((machine) => machine.start())).then(() => undefined),
    );
    const toSave = [...this.#bootSnapshotsToSave];
    this.#bootSnapshotsToSave.clear();
    await Promise.all(
      toSave.map(async ([machine, dir]) => {
        // Saved once systemd has finished starting the system and udev the boot's coldplug: a
        // restore skips all of boot, and work still under way would go on in every restore.
        await machine.execute("systemctl is-system-running --wait; udevadm settle");
        const isSaved = await this.log.step(
          `save boot snapshot ${dir}`,
          () => saveBootSnapshot(machine, dir),
          machine.name,
        );
        if (!isSaved) this.log.log("another run saved this boot snapshot first", machine.name);
      }),
    );
  }

  /** Waits until every machine has shut down. */
  async joinAll(): Promise<void> {
    this.#requireRunning("joinAll");
    await this.log.step("wait for all VMs to finish", () =>
      Promise.all(this.machines.map((machine) => machine.waitForShutdown())).then(() => undefined),
    );
  }

  /** Runs `fn` as a named part of the test: logged as a step, one JUnit test case. */
  async subtest<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.#requireRunning(`subtest(${JSON.stringify(name)})`);
    const started = performance.now();
    try {
      const result = await this.log.step(`subtest: ${name}`, fn);
      this.subtests.push({ name, durationMs: performance.now() - started });
      return result;
    } catch (error) {
      this.subtests.push({
        name,
        durationMs: performance.now() - started,
        failure: describeFailure(error),
      });
      throw error;
    }
  }

  /** Calls `fn(lastTry)` until it returns true, once per `interval`; fails at `timeout`. */
  async retry(
    fn: (lastTry: boolean) => boolean | Promise<boolean>,
    options: RetryOptions = {},
  ): Promise<void> {
    const timeout = requireTimeout(options.timeout ?? RETRY_TIMEOUT_MS, "retry");
    const interval = requireTimeout(options.interval ?? 1000, "retry: interval");
    const started = performance.now();
    for (;;) {
      this.#requireRunning("retry");
      const lastTry = performance.now() - started + interval > timeout;
      if (await fn(lastTry)) return;
      if (lastTry) throw new TimeoutError(`retry: still false after ${formatMs(timeout)}`);
      const { promise: slept, resolve } = Promise.withResolvers<void>();
      const cancel = setLongTimeout(resolve, interval);
      try {
        await Promise.race([slept, this.#failure.promise]);
      } finally {
        cancel();
      }
    }
  }

  /**
   * Checks `check` every few seconds while the test runs; when it throws or returns false the
   * test fails there. Dispose the result (`using`) to stop checking.
   */
  pollingCondition(
    check: () => boolean | Promise<boolean>,
    options: PollingConditionOptions = {},
  ): Disposable {
    this.#requireRunning("pollingCondition");
    const description = options.description ?? (check.name || "polling condition");
    const intervalMs = requireTimeout((options.seconds ?? 2) * 1000, "pollingCondition");
    let stopped = false;
    let cancel = (): void => {};
    const schedule = (): void => {
      cancel = setLongTimeout(() => void poll(), intervalMs);
    };
    const poll = async (): Promise<void> => {
      try {
        if (!(await check())) throw new CorralError(ErrorCodes.CONDITION_FAILED, "returned false");
      } catch (error) {
        if (stopped) return;
        stopped = true;
        const reason = error instanceof Error ? error.message : String(error);
        this.abort(
          new CorralError(ErrorCodes.CONDITION_FAILED, `${description} failed: ${reason}`, {
            cause: error,
          }),
        );
        return;
      }
      if (!stopped) schedule();
    };
    schedule();
    const condition = {
      [Symbol.dispose]: () => {
        stopped = true;
        cancel();
        this.#conditions.delete(condition);
      },
    };
    this.#conditions.add(condition);
    return condition;
  }

  /** Adds a machine to the test while it runs. */
  createMachine(spec: MachineSpec & { name: string }): Machine {
    this.#requireRunning("createMachine");
    const { name, ...rest } = spec;
    checkName(name, new Set(this.#machines.keys()));
    checkMachineSpec(name, rest);
    for (const vlan of rest.vlans ?? []) {
      if (!this.#switches.has(vlan)) {
        throw new CorralError(
          ErrorCodes.NOT_FOUND,
          `createMachine(${name}): VLAN ${vlan} does not exist in this test; VLANs: ${[...this.#switches.keys()].join(", ") || "none"}`,
        );
      }
    }
    if (this.#nodes.size >= MAX_NODES) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `a test has at most ${MAX_NODES} machines`,
      );
    }
    this.#nodes.set(name, Math.max(0, ...this.#nodes.values()) + 1);
    this.#specs.set(name, rest);
    const machine = this.#createMachine(name, rest, this.#machineOptions(name, rest));
    if (this.#context) Object.assign(this.#context, { [name]: machine });
    return machine;
  }

  /** Stops every machine and switch and removes their state. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#stopped ??= { reason: "the test's machines are disposed" };
    for (const condition of [...this.#conditions]) condition[Symbol.dispose]();
    await Promise.allSettled(this.machines.map((machine) => machine[Symbol.asyncDispose]()));
    await Promise.allSettled(this.vlans.map((vlan) => vlan[Symbol.asyncDispose]()));
    await rm(this.#stateRoot, { recursive: true, force: true });
    releaseDir(this.#stateRoot);
  }

  async #addMachine(name: string, spec: MachineSpec): Promise<void> {
    const options = this.#machineOptions(name, spec);
    if (this.#options.reuseBoot) {
      const dir = await bootSnapshotDir(name, options);
      const cached = await readManifest(dir).then(
        () => true,
        () => false,
      );
      const machine = this.#createMachine(
        name,
        spec,
        cached ? { ...options, snapshot: dir } : options,
      );
      if (cached) this.log.log(`restores its boot snapshot ${dir}`, name);
      else this.#bootSnapshotsToSave.set(machine, dir);
      return;
    }
    this.#createMachine(name, spec, options);
  }

  #machineOptions(name: string, spec: MachineSpec): MachineOptions {
    const node = this.#nodes.get(name) ?? 1;
    const vlans = (spec.vlans ?? []).map((vlan) => ({
      vlan,
      switchSocket: this.#switch(vlan).socket,
    }));
    return {
      name,
      node,
      vlans,
      ...(spec.startScript
        ? { startScript: spec.startScript }
        : { image: spec.image ?? DEFAULT_RECIPE }),
      ...(spec.cpus ? { cpus: spec.cpus } : {}),
      ...(spec.memoryMiB ? { memoryMiB: spec.memoryMiB } : {}),
      ...(spec.allowReboot ? { allowReboot: true } : {}),
      ...(spec.guestAgent ? { guestAgent: true } : {}),
      ...(this.#options.accel ? { accel: this.#options.accel } : {}),
      ...(this.#options.keepVmState
        ? {
            keepState: true,
            stateDir: join(
              tmpdir(),
              `corral-vm-state-${this.#options.stateKey ? `${this.#options.stateKey}-` : ""}${name}`,
            ),
          }
        : {}),
      kernelParams: this.#kernelParams(name),
      ...(spec.env ? { env: spec.env } : {}),
    };
  }

  #createMachine(name: string, spec: MachineSpec, options: MachineOptions): Machine {
    const machine = traceMachine(
      new Machine(options),
      this.log,
      this.#options.outputDir,
      (what) => this.refusal(what),
      this.#stop.signal,
    );
    machine.onConsoleLine((line) => this.log.console(name, line));
    this.#machines.set(name, machine);
    this.#specs.set(name, spec);
    return machine;
  }

  /** Throws once the test has stopped: nothing more of its body may run. */
  #requireRunning(what: string): void {
    const refusal = this.refusal(what);
    if (refusal) throw refusal;
  }

  /** corral-built guests take their host name and every machine's address from the kernel command line. */
  #kernelParams(name: string): string[] {
    const hosts: string[] = [];
    for (const [other, node] of this.#nodes) {
      for (const vlan of this.#specs.get(other)?.vlans ?? []) {
        hosts.push(`${vlanAddress(vlan, node)}:${other}`);
      }
    }
    return [
      `systemd.hostname=${name}`,
      ...(hosts.length ? [`corral.hosts=${hosts.join(",")}`] : []),
    ];
  }

  #switch(vlan: number): VlanSwitch {
    const found = this.#switches.get(vlan);
    if (!found)
      throw new CorralError(ErrorCodes.NOT_FOUND, `VLAN ${vlan} does not exist in this test`);
    return found;
  }
}

/** The machines and VLANs of a test, checked. */
async function check(options: DriverOptions): Promise<{ planned: Planned[]; vlans: Set<number> }> {
  const planned = await plan(options);
  const vlans = new Set(options.vlans ?? []);
  for (const { spec } of planned) for (const vlan of spec.vlans ?? []) vlans.add(vlan);
  for (const vlan of vlans) checkVlan(vlan);
  return { planned, vlans };
}

/**
 * The machines of a test, checked: names unique and usable, specs valid, images known, start
 * scripts runnable.
 */
async function plan(options: DriverOptions): Promise<Planned[]> {
  const planned: Planned[] = [];
  const taken = new Set<string>();
  for (const [name, spec] of Object.entries(options.machines ?? {})) {
    checkName(name, taken);
    checkMachineSpec(name, spec);
    if (spec.startScript) await checkStartScript(spec.startScript);
    else await checkImageName(spec.image ?? DEFAULT_RECIPE);
    planned.push({ name, spec: { ...spec, vlans: spec.vlans ?? [1] } });
    taken.add(name);
  }
  for (const entry of options.startScripts ?? []) {
    const script = typeof entry === "string" ? entry : entry.startScript;
    const name =
      typeof entry === "string" ? /^run-(.+)-vm$/.exec(basename(script))?.[1] : entry.name;
    if (!name) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `start script ${script}: its name must be run-<machine>-vm, as Nix builds them (or give the machines' names with --vm-names)`,
      );
    }
    checkName(name, taken);
    await checkStartScript(script);
    // A start script brings its own NICs; it is handed every VLAN of the test, as in NixOS.
    planned.push({
      name,
      spec: { startScript: resolve(script), vlans: [...(options.vlans ?? [])] },
    });
    taken.add(name);
  }
  if (planned.length > MAX_NODES) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `a test has at most ${MAX_NODES} machines, not ${planned.length}`,
    );
  }
  return planned;
}

function checkName(name: string, taken: ReadonlySet<string>): void {
  checkMachineName(name);
  if (CONTEXT_KEYS.has(name)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `machine name ${JSON.stringify(name)} is taken by a test helper of the same name; rename the machine`,
    );
  }
  if (taken.has(name)) {
    throw new CorralError(ErrorCodes.CONFLICT, `two machines are named ${JSON.stringify(name)}`);
  }
}

async function checkStartScript(script: string): Promise<void> {
  try {
    await access(script, constants.X_OK);
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : "is not executable";
    const code = reason === "does not exist" ? ErrorCodes.NOT_FOUND : ErrorCodes.INVALID_ARGUMENT;
    throw new CorralError(code, `start script ${script} ${reason}`);
  }
}

/** A JUnit failure from an error: its message, and its stack and details. */
export function describeFailure(error: unknown): { message: string; details: string } {
  if (error instanceof Error)
    return { message: error.message, details: error.stack ?? error.message };
  return { message: String(error), details: String(error) };
}
