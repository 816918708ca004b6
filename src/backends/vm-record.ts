// A persistent VM's record in its state folder (`vm.json`): what another corral process needs to
// find the VM again and reconnect to it. Written whole or not at all.

import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { CorralError, ErrorCodes } from "../errors.ts";
import { writeFileAtomic } from "../host/write-file-atomic.ts";
import type { VmRecord } from "./backend.ts";

export const RECORD_FILE = "vm.json";

export async function writeVmRecord(record: VmRecord): Promise<void> {
  await writeFileAtomic(
    join(record.spec.stateDir, RECORD_FILE),
    `${JSON.stringify(record, null, 2)}\n`,
  );
}

/** The record in `stateDir`; throws CORRAL_NOT_FOUND when there is none. */
export async function readVmRecord(stateDir: string): Promise<VmRecord> {
  let text: string;
  try {
    text = await readFile(join(stateDir, RECORD_FILE), "utf8");
  } catch (error) {
    throw new CorralError(
      ErrorCodes.NOT_FOUND,
      `${stateDir} holds no persistent VM: it has no ${RECORD_FILE} (start one with ownership "persistent" and this stateDir)`,
      { cause: error },
    );
  }
  const record = JSON.parse(text) as VmRecord;
  if (record.format !== 1) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `${join(stateDir, RECORD_FILE)} has format ${record.format}; this corral reads format 1`,
    );
  }
  return record;
}

/**
 * Removes what a VM that has ended leaves of its run: its record and sockets, while `vm.json` is
 * still this run's (same pid and start time). A later run in the same folder uses the same socket
 * paths: a cleanup that comes late (the process that spawned the VM sees it reaped only after a
 * Machine attached to it has seen it end and started it again) must not take the new run's files.
 * The disk stays.
 */
export async function removeRunFiles(record: VmRecord): Promise<void> {
  const current = await readVmRecord(record.spec.stateDir).catch(() => undefined);
  if (current?.pid !== record.pid || current.startTime !== record.startTime) return;
  await rm(join(record.spec.stateDir, RECORD_FILE), { force: true });
  await Promise.all(Object.values(record.sockets).map((socket) => rm(socket, { force: true })));
}
