// Machine's file copies between host and guest: through the guest's `corral.xfer` port, or
// through the 9p shared folder when the machine has one (`sharedDir`, mounted by the guest at
// /tmp/shared as NixOS test VMs do).

import { randomUUID } from "node:crypto";
import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { Deadline, type WaitOptions } from "../deadline.ts";
import { GuestCommandError } from "../errors.ts";
import type { BackdoorShell } from "../guest/backdoor-shell.ts";
import { shellQuote } from "../guest/shell-quote.ts";
import type { TransferPort } from "../guest/transfer-port.ts";
import { EXECUTE_TIMEOUT_MS, type VmSession } from "./vm-session.ts";

/** Where the guest mounts the 9p shared folder. */
export const GUEST_SHARED_DIR = "/tmp/shared";

/** Copies the host file `source` to `target` in the guest (parent folders are created). */
export async function copyFromHost(
  session: VmSession,
  source: string,
  target: string,
  options: WaitOptions,
): Promise<void> {
  const what = `${session.name}: copyFromHost(${source}, ${target})`;
  const deadline = new Deadline(what, options, EXECUTE_TIMEOUT_MS);
  const shared = await sharedFolder(session, deadline);
  if (shared) {
    const name = `.corral-copy-${randomUUID()}`;
    await copyFile(resolve(source), join(shared, name));
    try {
      const inGuest = shellQuote(`${GUEST_SHARED_DIR}/${name}`);
      await run(
        session,
        deadline,
        `mkdir -p -- "$(dirname -- ${shellQuote(target)})" && cp -- ${inGuest} ${shellQuote(target)}`,
      );
    } finally {
      await rm(join(shared, name), { force: true });
    }
    return;
  }
  await throughPort(session, deadline, `copying ${source} in`, (port, shell) =>
    port.toGuest(shell, resolve(source), target, deadline, () => session.describe()),
  );
}

/** Copies the guest file `source` to `target` on the host (parent folders are created). */
export async function copyFromVm(
  session: VmSession,
  source: string,
  target: string,
  options: WaitOptions,
): Promise<void> {
  const what = `${session.name}: copyFromVm(${source}, ${target})`;
  const deadline = new Deadline(what, options, EXECUTE_TIMEOUT_MS);
  await mkdir(dirname(resolve(target)), { recursive: true });
  const shared = await sharedFolder(session, deadline);
  if (shared) {
    const name = `.corral-copy-${randomUUID()}`;
    try {
      await run(
        session,
        deadline,
        `cp -- ${shellQuote(source)} ${shellQuote(`${GUEST_SHARED_DIR}/${name}`)}`,
      );
      await rename(join(shared, name), resolve(target)).catch(async () => {
        await copyFile(join(shared, name), resolve(target));
      });
    } finally {
      await rm(join(shared, name), { force: true });
    }
    return;
  }
  await throughPort(session, deadline, `copying ${source} out`, (port, shell) =>
    port.toHost(shell, source, resolve(target), deadline, () => session.describe()),
  );
}

/** Runs a copy over the `corral.xfer` port, once the shell and the port are connected. */
async function throughPort(
  session: VmSession,
  deadline: Deadline,
  during: string,
  copy: (port: TransferPort, shell: BackdoorShell) => Promise<unknown>,
): Promise<void> {
  const shell = await session.connect(deadline);
  const port = await session.transferPort(deadline);
  await session.explained(copy(port, shell), during);
}

/** The host side of the shared folder, when the machine has one and the guest has mounted it. */
async function sharedFolder(session: VmSession, deadline: Deadline): Promise<string | undefined> {
  const host = session.options.sharedDir;
  if (!host) return undefined;
  const mounted = await session.execute(`mountpoint -q ${GUEST_SHARED_DIR}`, {
    signal: deadline.signal,
  });
  return mounted.exitCode === 0 ? resolve(host) : undefined;
}

async function run(session: VmSession, deadline: Deadline, command: string): Promise<void> {
  const result = await session.execute(command, { signal: deadline.signal });
  if (result.exitCode !== 0) {
    throw new GuestCommandError(
      `${session.name}: copy through the shared folder failed: ${command}`,
      {
        command,
        exitCode: result.exitCode,
        stdout: result.stdout.toString(),
        stderr: result.stderr.toString(),
      },
      { machine: session.name },
    );
  }
}
