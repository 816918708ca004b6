// Machine's systemd verbs: unit properties and the wait for a unit to be active.

import { Deadline, formatMs } from "../deadline.ts";
import { CorralError, ErrorCodes, GuestCommandError, TimeoutError } from "../errors.ts";
import { shellQuote } from "../guest/shell-quote.ts";
import {
  EXIT_NO_SUCH_USER,
  EXIT_UNIT_FAILED,
  EXIT_UNIT_INACTIVE,
  EXIT_UNIT_NOT_FOUND,
  EXIT_WAIT_TIMEOUT,
  systemctlCommand,
  waitForUnitScript,
} from "./guest-scripts.ts";
import type { UserOptions } from "./machine-options.ts";
import { type VmSession, WAIT_TIMEOUT_MS } from "./vm-session.ts";

/** Every property of `unit` (`systemctl show`). Throws CORRAL_UNIT_NOT_FOUND for unknown units. */
export async function getUnitInfo(
  session: VmSession,
  unit: string,
  options: UserOptions,
): Promise<Record<string, string>> {
  const command = systemctlCommand(`show --no-pager ${shellQuote(unit)}`, options.user);
  const raw = await session.execute(command, options);
  const result = { ...raw, stdout: raw.stdout.toString(), stderr: raw.stderr.toString() };
  if (result.exitCode !== 0) {
    throw new GuestCommandError(
      `${session.name}: systemctl show ${unit} failed`,
      { command, ...result },
      { machine: session.name },
    );
  }
  const info: Record<string, string> = {};
  for (const line of result.stdout.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0) info[line.slice(0, at)] = line.slice(at + 1);
  }
  if (info.LoadState === "not-found") throw unitNotFound(session, unit);
  return info;
}

/**
 * Waits until `unit` is active; fails at once when it does not exist, has failed, or is
 * inactive with no job queued that could start it.
 */
export async function waitForUnit(
  session: VmSession,
  unit: string,
  options: UserOptions,
): Promise<void> {
  const what = `waitForUnit(${JSON.stringify(unit)}${options.user ? `, user ${options.user}` : ""})`;
  const deadline = new Deadline(`${session.name}: ${what}`, options, WAIT_TIMEOUT_MS);
  const result = await session.runWaitScript(
    waitForUnitScript(unit, deadline.remainingMs, options.user),
    deadline,
    options.signal,
  );
  const state = result.stdout.toString().trim().replace(/\n/g, ", ");
  const machine = session.name;
  switch (result.exitCode) {
    case 0:
      return;
    case EXIT_UNIT_NOT_FOUND:
      throw unitNotFound(session, unit);
    case EXIT_NO_SUCH_USER:
      throw new CorralError(
        ErrorCodes.NOT_FOUND,
        `${machine}: ${what}: the guest has no such user`,
        {
          machine,
        },
      );
    case EXIT_UNIT_FAILED:
      throw new CorralError(ErrorCodes.UNIT_STATE, `${machine}: unit ${unit} failed (${state})`, {
        machine,
        details: session.describe(),
      });
    case EXIT_UNIT_INACTIVE:
      throw new CorralError(
        ErrorCodes.UNIT_STATE,
        `${machine}: unit ${unit} is inactive and no job is pending to start it (${state})`,
        { machine },
      );
    case EXIT_WAIT_TIMEOUT:
      throw new TimeoutError(
        `${machine}: ${what}: timed out after ${formatMs(deadline.timeoutMs)}`,
        {
          machine,
          details: [`Last state: ${state}`, ...session.describe()],
        },
      );
    default:
      throw new GuestCommandError(`${machine}: ${what}: the wait script failed`, {
        command: what,
        exitCode: result.exitCode,
        stdout: result.stdout.toString(),
        stderr: result.stderr.toString(),
      });
  }
}

function unitNotFound(session: VmSession, unit: string): CorralError {
  return new CorralError(
    ErrorCodes.UNIT_NOT_FOUND,
    `${session.name}: unit ${unit} does not exist`,
    {
      machine: session.name,
    },
  );
}
