// Port forwards of QEMU's user-mode NIC (netdev `user.0`), added and removed while the VM runs
// with the monitor's `hostfwd_add` / `hostfwd_remove` (HMP through QMP's human-monitor-command:
// QEMU 7.2 has no QMP command for them). At start they are `-netdev user,hostfwd=…` options,
// which QEMU_NET_OPTS carries.

import type { Deadline } from "../../deadline.ts";
import { CorralError, ErrorCodes } from "../../errors.ts";
import { isLocalPortInUse } from "../../host/local-port.ts";
import type { HostForward, HostForwardTarget } from "../backend.ts";

/** Runs a monitor command line and returns its output. */
export type MonitorCommand = (deadline: Deadline, commandLine: string) => Promise<string>;

/** `tcp:127.0.0.1:8080`: a forward's host side, as hostfwd rules write it. */
function hostSide(forward: HostForwardTarget): string {
  return `${forward.protocol ?? "tcp"}:${forward.hostAddress ?? "127.0.0.1"}:${forward.hostPort}`;
}

/**
 * Adds `forward`; returns its host port (the one QEMU chose for port 0). Throws CORRAL_CONFLICT
 * when QEMU refuses it (saying so when the port is in use on 127.0.0.1), CORRAL_QMP_ERROR when it
 * cannot tell which port QEMU chose.
 */
export async function addHostForward(
  monitor: MonitorCommand,
  deadline: Deadline,
  forward: HostForward,
  machine: string,
): Promise<number> {
  const protocol = forward.protocol ?? "tcp";
  const hostAddress = forward.hostAddress ?? "127.0.0.1";
  // QEMU 7.2 binds port 0 to a free port and shows it only in `info usernet`.
  const before = forward.hostPort === 0 ? await forwardedPorts(monitor, deadline, protocol) : [];
  const output = (
    await monitor(deadline, `hostfwd_add user.0 ${hostSide(forward)}-:${forward.guestPort}`)
  ).trim();
  if (output !== "") {
    // QEMU says only "Could not set up host forwarding rule", whatever the reason.
    const isInUse =
      forward.hostPort !== 0 &&
      protocol === "tcp" &&
      hostAddress === "127.0.0.1" &&
      (await isLocalPortInUse(forward.hostPort));
    throw new CorralError(
      ErrorCodes.CONFLICT,
      isInUse
        ? `${deadline.what}: 127.0.0.1:${forward.hostPort} is already in use`
        : `${deadline.what}: QEMU refused: ${output}`,
      { machine },
    );
  }
  if (forward.hostPort !== 0) return forward.hostPort;
  const added = (await forwardedPorts(monitor, deadline, protocol)).filter(
    (port) => !before.includes(port),
  );
  if (added.length !== 1 || added[0] === undefined) {
    throw new CorralError(
      ErrorCodes.QMP_ERROR,
      `${deadline.what}: cannot tell which host port QEMU bound (new forwards: ${added.join(", ") || "none"})`,
      { machine },
    );
  }
  return added[0];
}

/**
 * Removes the forward of `target`'s host side; returns whether there was one (QEMU answers
 * "host forwarding rule for … not found" otherwise). Throws CORRAL_QMP_ERROR for another answer.
 */
export async function removeHostForward(
  monitor: MonitorCommand,
  deadline: Deadline,
  target: HostForwardTarget,
  machine: string,
): Promise<boolean> {
  const output = (await monitor(deadline, `hostfwd_remove user.0 ${hostSide(target)}`)).trim();
  if (output.endsWith(" removed")) return true;
  if (output.endsWith(" not found")) return false;
  throw new CorralError(ErrorCodes.QMP_ERROR, `${deadline.what}: QEMU answered: ${output}`, {
    machine,
  });
}

/** The host ports QEMU forwards to the guest over `protocol`. */
async function forwardedPorts(
  monitor: MonitorCommand,
  deadline: Deadline,
  protocol: "tcp" | "udp",
): Promise<number[]> {
  const table = await monitor(deadline, "info usernet");
  const pattern = new RegExp(
    `${protocol.toUpperCase()}\\[HOST_FORWARD\\]\\s+\\d+\\s+\\S+\\s+(\\d+)`,
    "g",
  );
  return [...table.matchAll(pattern)].map((match) => Number(match[1]));
}
