// What an image file is, checked before corral keeps it: its format as `qemu-img info` sees it
// (an ISO is "raw" to qemu-img: the ISO 9660 signature tells), refusals for what a VM could not
// use on its own (a backing file, an external data file, a format corral does not take), and its
// sha256, read as a stream.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { AbortedError, CorralError, ErrorCodes } from "../errors.ts";
import { runProgram } from "../host/run-program.ts";
import type { ImageFormat } from "../store/images.ts";

export interface ImageFileInfo {
  format: ImageFormat;
  /** The disk's size as the guest sees it, in bytes (the file's own size for an ISO). */
  virtualSizeBytes: number;
}

/** Where ISO 9660's first volume descriptor says "CD001": sector 16 of 2048 bytes, plus one. */
const ISO_SIGNATURE_OFFSET = 16 * 2048 + 1;

/**
 * The format of the image file at `path`, checked against `wanted` when given (an ISO may be
 * taken as raw: it is one). Throws CORRAL_INVALID_ARGUMENT, naming the file, for a file
 * qemu-img cannot read, a format other than qcow2, raw or ISO, a qcow2 with a backing file or an
 * external data file, or a `wanted` format the file is not.
 */
export async function inspectImageFile(
  path: string,
  wanted?: ImageFormat,
  signal?: AbortSignal,
): Promise<ImageFileInfo> {
  const info = await qemuImgInfo(path, signal);
  let detected: ImageFormat;
  if (info.format === "qcow2") {
    const backing = info["backing-filename"];
    if (backing !== undefined) {
      throw refused(
        path,
        `is a qcow2 with a backing file (${backing}), which would not come along; flatten it first: qemu-img convert -O qcow2 ${path} standalone.qcow2`,
      );
    }
    const dataFile = info["format-specific"]?.data?.["data-file"];
    if (dataFile !== undefined) {
      throw refused(
        path,
        `is a qcow2 whose data lives in another file (${dataFile}); make a self-contained copy first: qemu-img convert -O qcow2 ${path} standalone.qcow2`,
      );
    }
    detected = "qcow2";
  } else if (info.format === "raw") {
    detected = (await hasIsoSignature(path)) ? "iso" : "raw";
  } else {
    throw refused(
      path,
      `is a ${info.format} image; corral takes qcow2, raw and ISO images: convert it first: qemu-img convert -O qcow2 ${path} converted.qcow2`,
    );
  }
  const allowed = detected === "iso" ? ["iso", "raw"] : [detected];
  if (wanted !== undefined && !allowed.includes(wanted)) {
    throw refused(
      path,
      `is ${detected === "iso" ? "an ISO 9660 image" : `a ${detected} image`}, not ${wanted === "iso" ? "an ISO 9660 image" : wanted}: leave format out or give ${allowed.join(" or ")}`,
    );
  }
  return { format: wanted ?? detected, virtualSizeBytes: info["virtual-size"] };
}

/** The sha256 of the file at `path` in lower-case hex, read in 1 MiB pieces. */
export async function sha256OfFile(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  const stream = createReadStream(path, { highWaterMark: 1 << 20, ...(signal && { signal }) });
  try {
    for await (const chunk of stream) hash.update(chunk as Buffer);
  } catch (error) {
    if (signal?.aborted) throw new AbortedError(`sha256 of ${path}: aborted`, { cause: error });
    throw error;
  }
  return hash.digest("hex");
}

/**
 * The size of the disk image at `path` as the guest sees it, in bytes. Throws
 * CORRAL_INVALID_ARGUMENT when qemu-img cannot read it.
 */
export async function virtualSizeOf(path: string, format: "qcow2" | "raw"): Promise<number> {
  // -U: a running VM may hold the image's lock; it only reads the base image.
  return (await qemuImgInfo(path, undefined, ["-U", "-f", format]))["virtual-size"];
}

interface QemuImgInfo {
  format: string;
  "virtual-size": number;
  "backing-filename"?: string;
  "format-specific"?: { data?: { "data-file"?: string } };
}

async function qemuImgInfo(
  path: string,
  signal?: AbortSignal,
  extraArgs: string[] = [],
): Promise<QemuImgInfo> {
  try {
    const { stdout } = await runProgram(
      "qemu-img",
      ["info", "--output=json", ...extraArgs, path],
      signal ? { signal } : {},
    );
    return JSON.parse(stdout) as QemuImgInfo;
  } catch (error) {
    if (signal?.aborted) throw new AbortedError(`qemu-img info ${path}: aborted`, { cause: error });
    const why = error instanceof CorralError && error.details.length > 0 ? error.details : [];
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `image file ${path} cannot be read by qemu-img info`,
      { cause: error, details: why },
    );
  }
}

async function hasIsoSignature(path: string): Promise<boolean> {
  const file = await open(path, "r");
  try {
    const signature = Buffer.alloc(5);
    const { bytesRead } = await file.read(signature, 0, 5, ISO_SIGNATURE_OFFSET);
    return bytesRead === 5 && signature.toString("latin1") === "CD001";
  } finally {
    await file.close();
  }
}

function refused(path: string, why: string): CorralError {
  return new CorralError(ErrorCodes.INVALID_ARGUMENT, `image file ${path} ${why}`);
}
