// Which channel reaches a machine's guest: the one its spec forces, or by probe — the backdoor
// shell if it answers (it streams and costs one round trip), else qemu-ga if it answers
// guest-ping (Linux or Windows, as the agent reports), else a clear error. qemu-ga usually
// starts after the backdoor shell, so an agent that answers first gives the shell a moment more.

import { setTimeout as sleep } from "node:timers/promises";
import type { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import type { QgaClient } from "../../guest/qga-client.ts";
import type { Machine } from "../../machine/machine.ts";
import type { GuestChannelKind, GuestOps } from "./guest-ops.ts";
import { LinuxBackdoorOps } from "./linux-backdoor.ts";
import { LinuxQgaOps } from "./linux-qga.ts";
import { WindowsQgaOps } from "./windows-qga.ts";

/** How to reach a guest: by probe, or one channel only. */
export type GuestChannelChoice = "auto" | GuestChannelKind;

/** How long the backdoor shell may still answer once qemu-ga has, in ms. */
const SHELL_GRACE_MS = 2000;

/**
 * The GuestOps of `machine` (running) through `choice`. Fails at the deadline when a forced
 * channel does not answer in time; with `auto`, CORRAL_UNSUPPORTED "no guest channel" when
 * neither answers within it (or the machine has no agent port and no shell answers).
 */
export async function openGuestOps(
  machine: Machine,
  choice: GuestChannelChoice,
  deadline: Deadline,
): Promise<GuestOps> {
  const wait = { timeout: deadline.remainingMs, signal: deadline.signal };
  if (choice === "backdoor") {
    await machine.waitForShell(wait);
    return new LinuxBackdoorOps(machine);
  }
  if (choice === "qga") return qgaOps(await machine.guestAgent(wait), deadline);
  if (machine.isUp()) return new LinuxBackdoorOps(machine);
  const shell = machine.waitForShell(wait).then(() => "shell" as const);
  const agent = machine.guestAgent(wait);
  const first = await Promise.any([shell, agent]).catch(() => undefined);
  if (first === "shell") return new LinuxBackdoorOps(machine);
  if (first) {
    // The agent answered first: the shell has a moment more (it streams; the agent does not).
    const isShell = await Promise.race([
      shell.then(
        () => true,
        () => false,
      ),
      sleep(SHELL_GRACE_MS).then(() => false),
    ]);
    return isShell ? new LinuxBackdoorOps(machine) : qgaOps(first, deadline);
  }
  const [shellOutcome, agentOutcome] = await Promise.allSettled([shell, agent]);
  throw new CorralError(
    ErrorCodes.UNSUPPORTED,
    `${machine.name}: no guest channel: neither the backdoor shell nor qemu-ga answers`,
    {
      machine: machine.name,
      details: [
        `backdoor shell: ${firstLine(shellOutcome.status === "rejected" ? shellOutcome.reason : "")}`,
        `qemu-ga: ${firstLine(agentOutcome.status === "rejected" ? agentOutcome.reason : "")}`,
      ],
    },
  );
}

/** Linux or Windows operations over `client`, as its agent reports the OS. */
async function qgaOps(client: QgaClient, deadline: Deadline): Promise<GuestOps> {
  const os = await client.osInfo(deadline);
  return os.id === "mswindows" ? new WindowsQgaOps(client) : new LinuxQgaOps(client);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}
