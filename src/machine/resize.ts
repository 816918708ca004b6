// Growing a running machine: the checks (a running machine only grows, and only within the limits
// it started with), the backend's hot-plugging, and the wait until the guest sees what was added,
// polled inside the guest in one round trip.

import type { ResizeTarget, VmSize } from "../backends/backend.ts";
import { formatMs, type WaitOptions } from "../deadline.ts";
import { CorralError, ErrorCodes, GuestCommandError, TimeoutError } from "../errors.ts";
import { untilScript } from "./guest-scripts.ts";
import {
  type FieldRule,
  MAX_CPUS,
  MAX_MEMORY_MIB,
  MIN_MEMORY_MIB,
  validateFields,
  wholeNumber,
} from "./validate-options.ts";
import type { VmSession } from "./vm-session.ts";

const RESIZE_TIMEOUT_MS = 120_000;
/** qcow2's largest virtual disk. */
const MAX_DISK_GIB = 65_536;
const GIB = 2 ** 30;
/** Hot-added memory counts as seen once MemTotal has grown by this share of it. */
const MEMORY_SEEN_SHARE = 0.9;

export const RESIZE_RULES: { readonly [K in keyof ResizeTarget]-?: FieldRule } = {
  cpus: wholeNumber(1, MAX_CPUS),
  memoryMiB: wholeNumber(MIN_MEMORY_MIB, MAX_MEMORY_MIB, " of MiB"),
  diskGiB: wholeNumber(1, MAX_DISK_GIB, " of GiB"),
};

/**
 * What of `target` grows `current`. Throws CORRAL_INVALID_ARGUMENT for a bad or empty target or
 * memory not grown in whole steps, CORRAL_CONFLICT for shrinking or going past a limit (naming
 * the limit and the current value).
 */
export function planResize(
  machine: string,
  current: VmSize,
  target: ResizeTarget,
  startedWith: { maxCpus?: number | undefined; maxMemoryMiB?: number | undefined } = {},
): ResizeTarget {
  const subject = `${machine}: resize`;
  validateFields(subject, target, RESIZE_RULES);
  const { cpus, memoryMiB, diskGiB } = target;
  if (cpus === undefined && memoryMiB === undefined && diskGiB === undefined) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${subject}: give at least one of cpus, memoryMiB and diskGiB`,
      { machine },
    );
  }
  const conflict = (message: string) =>
    new CorralError(ErrorCodes.CONFLICT, `${subject}: ${message}`, { machine });
  const noHeadroom = (option: string) =>
    `; it was started without ${option}, and only a machine started with headroom can grow`;
  const growth: ResizeTarget = {};
  if (cpus !== undefined && cpus !== current.cpus) {
    if (cpus < current.cpus) {
      throw conflict(
        `cpus ${cpus} is fewer than the ${current.cpus} it has: a running machine cannot shrink`,
      );
    }
    if (cpus > current.maxCpus) {
      throw conflict(
        `cpus ${cpus} is more than its limit, maxCpus ${current.maxCpus} (it has ${current.cpus})${startedWith.maxCpus === undefined ? noHeadroom("maxCpus") : ""}`,
      );
    }
    growth.cpus = cpus;
  }
  if (memoryMiB !== undefined && memoryMiB !== current.memoryMiB) {
    if (memoryMiB < current.memoryMiB) {
      throw conflict(
        `memoryMiB ${memoryMiB} is less than the ${current.memoryMiB} MiB it has: a running machine cannot shrink`,
      );
    }
    if (memoryMiB > current.maxMemoryMiB) {
      throw conflict(
        `memoryMiB ${memoryMiB} is more than its limit, maxMemoryMiB ${current.maxMemoryMiB} (it has ${current.memoryMiB})${startedWith.maxMemoryMiB === undefined ? noHeadroom("maxMemoryMiB") : ""}`,
      );
    }
    const added = memoryMiB - current.memoryMiB;
    if (added % current.memoryStepMiB !== 0) {
      throw new CorralError(
        ErrorCodes.INVALID_ARGUMENT,
        `${subject}: memoryMiB ${memoryMiB} would add ${added} MiB to the ${current.memoryMiB} it has; memory grows in whole steps of ${current.memoryStepMiB} MiB`,
        { machine },
      );
    }
    growth.memoryMiB = memoryMiB;
  }
  if (diskGiB !== undefined && diskGiB * GIB !== current.diskBytes) {
    if (diskGiB * GIB < current.diskBytes) {
      throw conflict(
        `diskGiB ${diskGiB} is less than the ${formatGiB(current.diskBytes)} GiB its disk has: a disk cannot shrink`,
      );
    }
    growth.diskGiB = diskGiB;
  }
  return growth;
}

/** What the guest sees, as `resize` waits for it. */
export interface GuestSize {
  /** vCPUs onlined to the end, so that its processes may run there (what `nproc` counts). */
  cpus: number;
  memTotalKiB: number;
  /** The size of the disk that holds the root filesystem; 0 when / is on no block device. */
  diskBytes: number;
}

/**
 * Prints what the guest sees ("cpus 2, MemTotal 1190952 kB, disk 3221225472 bytes"); with
 * `atLeast`, succeeds only once it sees that much. The disk is the one holding `/` (the whole
 * disk when `/` is on a partition). Bash builtins only: a process forked under TCG costs ~100 ms,
 * and a wait runs this again and again.
 */
export function guestSizeCommand(atLeast?: GuestSize): string {
  const measure = [
    'while read -r _ _ n _ p _; do [ "$p" = / ] && d=/sys/dev/block/$n; done </proc/self/mountinfo',
    '[ -e "$d/partition" ] && d=$d/..',
    // A CPU's own `online` says 1 once onlining it has finished (the boot CPU has none); the
    // kernel's online mask has it earlier, before the scheduler runs anything there (nproc).
    'c=0; for f in /sys/devices/system/cpu/cpu[0-9]*; do o=1; [ -r "$f/online" ] && read -r o <"$f/online"; c=$((c + o)); done',
    'while read -r k m _; do [ "$k" = MemTotal: ] && break; done </proc/meminfo',
    'b=0; [ -r "$d/size" ] && read -r b <"$d/size"; b=$((b * 512))',
    'echo "cpus $c, MemTotal $m kB, disk $b bytes"',
  ];
  if (!atLeast) return measure.join("; ");
  const { cpus, memTotalKiB, diskBytes } = atLeast;
  return [
    ...measure,
    `[ "$c" -ge ${cpus} ] && [ "$m" -ge ${memTotalKiB} ] && [ "$b" -ge ${diskBytes} ]`,
  ].join("; ");
}

/** What guestSizeCommand printed. */
export function parseGuestSize(text: string): GuestSize | undefined {
  const match = /cpus (\d+), MemTotal (\d+) kB, disk (\d+) bytes/.exec(text);
  if (!match) return undefined;
  return { cpus: Number(match[1]), memTotalKiB: Number(match[2]), diskBytes: Number(match[3]) };
}

/**
 * Grows the running machine to `target` and waits until the guest sees it; returns its new
 * size. The session records the new vCPUs and memory, so that a later start keeps them.
 */
export async function resizeMachine(
  session: VmSession,
  target: ResizeTarget,
  options: WaitOptions,
): Promise<VmSize> {
  const deadline = session.deadline(
    `resize(${JSON.stringify(target)})`,
    options,
    RESIZE_TIMEOUT_MS,
  );
  session.lifecycle.require("resize", "resize()", session.name);
  const resizing = session.ability("resize()", "resize");
  const current = await resizing.size(deadline);
  const growth = planResize(session.name, current, target, session.options);
  if (Object.keys(growth).length === 0) return current;
  const before = await session.run(guestSizeCommand(), deadline);
  const seen = parseGuestSize(before.stdout.toString());
  if (before.exitCode !== 0 || !seen) {
    throw new GuestCommandError(
      `${deadline.what}: cannot read the guest's vCPUs, memory and disk`,
      {
        command: guestSizeCommand(),
        exitCode: before.exitCode,
        stdout: before.stdout.toString(),
        stderr: before.stderr.toString(),
      },
      { machine: session.name },
    );
  }
  try {
    await resizing.resize(deadline, growth);
  } finally {
    const after = await resizing.size(deadline).catch(() => undefined);
    if (after && (growth.cpus || growth.memoryMiB)) session.recordSize(after);
  }
  const expected: GuestSize = {
    cpus: growth.cpus ?? 0,
    memTotalKiB: growth.memoryMiB
      ? Math.floor(
          seen.memTotalKiB + (growth.memoryMiB - current.memoryMiB) * 1024 * MEMORY_SEEN_SHARE,
        )
      : 0,
    diskBytes: growth.diskGiB ? growth.diskGiB * GIB : 0,
  };
  const result = await session.runWaitScript(
    untilScript(guestSizeCommand(expected), true, deadline.remainingMs),
    deadline,
    options.signal,
  );
  if (result.exitCode !== 0) {
    const shows = result.stdout.toString().trim().split("\n").at(-1) || "nothing";
    throw new TimeoutError(
      `${deadline.what}: timed out after ${formatMs(deadline.timeoutMs)} waiting for the guest to see ${describeGuestSize(expected)}; it shows ${shows}. The guest must online hot-added vCPUs and memory itself (corral's image does, with a udev rule)`,
      { machine: session.name, details: session.describe() },
    );
  }
  return resizing.size(deadline);
}

function describeGuestSize(size: GuestSize): string {
  return [
    size.cpus ? `${size.cpus} vCPUs` : "",
    size.memTotalKiB ? `MemTotal of at least ${size.memTotalKiB} kB` : "",
    size.diskBytes ? `a disk of ${size.diskBytes} bytes` : "",
  ]
    .filter(Boolean)
    .join(", ");
}

function formatGiB(bytes: number): string {
  return String(Math.round((bytes / GIB) * 100) / 100);
}
