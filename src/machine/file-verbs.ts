// Machine's file copies between host and guest, through the guest's `corral.xfer` port.

import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { Deadline, type WaitOptions } from "../deadline.ts";
import { EXECUTE_TIMEOUT_MS, type VmSession } from "./vm-session.ts";

/** Copies the host file `source` to `target` in the guest (parent folders are created). */
export async function copyFromHost(
  session: VmSession,
  source: string,
  target: string,
  options: WaitOptions,
): Promise<void> {
  const what = `${session.name}: copyFromHost(${source}, ${target})`;
  const deadline = new Deadline(what, options, EXECUTE_TIMEOUT_MS);
  const shell = await session.connect(deadline);
  const port = await session.transferPort(deadline);
  await session.explained(
    port.toGuest(shell, resolve(source), target, deadline, () => session.describe()),
    `copying ${source} in`,
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
  const shell = await session.connect(deadline);
  const port = await session.transferPort(deadline);
  await mkdir(dirname(resolve(target)), { recursive: true });
  await session.explained(
    port.toHost(shell, source, resolve(target), deadline, () => session.describe()),
    `copying ${source} out`,
  );
}
