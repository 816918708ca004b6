// A snapshot's ready-made clone overlay: an empty qcow2 layer over the snapshot's disk, made once
// when the snapshot is saved. A restore copies it and writes its own base's path into the copy's
// header, where `qemu-img create` (a process start: 10 ms of a 0.2 s restore) did the same.
// The header fields are qcow2's (docs/interop/qcow2.txt in QEMU): the backing file's name lives
// in the header cluster at `backing_file_offset`, `backing_file_size` bytes long.

import { constants, copyFile, open, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { runProgram } from "../../host/run-program.ts";

/** The template's name in a snapshot folder, beside the disk it is a layer of. */
export const OVERLAY_TEMPLATE = "disk-overlay.qcow2";

const QCOW2_MAGIC = 0x514649fb;
/** QEMU refuses longer backing file names. */
const MAX_BACKING_NAME_BYTES = 1023;
const HEADER_BYTES = 72;

/** Makes the template over `disk` beside it; returns its name. */
export async function makeOverlayTemplate(disk: string): Promise<string> {
  const template = join(dirname(disk), OVERLAY_TEMPLATE);
  await runProgram("qemu-img", [
    ...["create", "-q", "-f", "qcow2", "-F", "qcow2"],
    ...["-b", basename(disk), template],
  ]);
  return OVERLAY_TEMPLATE;
}

/**
 * Creates the overlay `path` over `base` from the template beside `base`, when there is one that
 * can name it; false (and nothing written) otherwise.
 */
export async function overlayFromTemplate(base: string, path: string): Promise<boolean> {
  const template = join(dirname(base), OVERLAY_TEMPLATE);
  const name = Buffer.from(base);
  try {
    await copyFile(template, path, constants.COPYFILE_EXCL);
  } catch {
    return false;
  }
  const file = await open(path, "r+");
  let isWritten = false;
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    await file.read(header, 0, HEADER_BYTES, 0);
    const offset = Number(header.readBigUInt64BE(8));
    const oldSize = header.readUInt32BE(16);
    const field = Buffer.alloc(Math.max(name.length, oldSize));
    const fits =
      header.readUInt32BE(0) === QCOW2_MAGIC &&
      header.readUInt32BE(4) >= 2 &&
      offset >= HEADER_BYTES &&
      name.length <= MAX_BACKING_NAME_BYTES &&
      offset + field.length <= 2 ** header.readUInt32BE(20);
    if (fits) {
      name.copy(field);
      await file.write(field, 0, field.length, offset);
      const size = Buffer.alloc(4);
      size.writeUInt32BE(name.length);
      await file.write(size, 0, 4, 16);
      isWritten = true;
    }
  } finally {
    await file.close();
    if (!isWritten) await rm(path, { force: true });
  }
  return isWritten;
}
