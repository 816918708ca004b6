// The uncompressed kernel (an ELF `vmlinux`) inside a bzImage (`vmlinuz`), for the VMMs that
// boot only that (Firecracker; Cloud Hypervisor's direct boot). The x86 boot protocol's header
// says where the compressed payload is (`payload_offset`, `payload_length`, protocol 2.08+);
// its magic says how it is compressed; the matching Debian tool decompresses it. Debian 12's
// cloud kernel is LZ4 (legacy frames). Like the kernel's scripts/extract-vmlinux, a decompressor
// that complains about the size the kernel appends after the stream is forgiven when what it
// wrote is an ELF file.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { open, readFile, rm } from "node:fs/promises";
import { CorralError, ErrorCodes } from "../errors.ts";

/** Decompressors by the payload's first bytes, with the Debian package that has each. */
const FORMATS: readonly { name: string; magic: Buffer; tool: string; debianPackage: string }[] = [
  { name: "gzip", magic: Buffer.from([0x1f, 0x8b]), tool: "gzip", debianPackage: "gzip" },
  { name: "xz", magic: Buffer.from("fd377a585a00", "hex"), tool: "xz", debianPackage: "xz-utils" },
  { name: "zstd", magic: Buffer.from("28b52ffd", "hex"), tool: "zstd", debianPackage: "zstd" },
  { name: "lz4", magic: Buffer.from("02214c18", "hex"), tool: "lz4", debianPackage: "lz4" },
  { name: "bzip2", magic: Buffer.from("425a68", "hex"), tool: "bzip2", debianPackage: "bzip2" },
];

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** Where the compressed kernel is in `bzImage`, and how it is compressed. */
export function bzImagePayload(bzImage: Buffer): {
  payload: Buffer;
  format: (typeof FORMATS)[number];
} {
  const isBzImage = bzImage.length > 0x250 && bzImage.toString("latin1", 0x202, 0x206) === "HdrS";
  const version = isBzImage ? bzImage.readUInt16LE(0x206) : 0;
  if (version < 0x208) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      "not a bzImage of boot protocol 2.08 or later (no payload offset in its header)",
    );
  }
  const setupSectors = bzImage[0x1f1] || 4;
  const start = (setupSectors + 1) * 512 + bzImage.readUInt32LE(0x248);
  const payload = bzImage.subarray(start, start + bzImage.readUInt32LE(0x24c));
  const format = FORMATS.find((f) => payload.subarray(0, f.magic.length).equals(f.magic));
  if (!format) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `the bzImage's payload starts with ${payload.subarray(0, 6).toString("hex")}, no compression corral knows (${FORMATS.map((f) => f.name).join(", ")})`,
    );
  }
  return { payload, format };
}

/**
 * Writes the ELF kernel inside the bzImage `vmlinuz` to `output`. Throws
 * CORRAL_INVALID_ARGUMENT when `vmlinuz` is not a bzImage or its payload is unknown,
 * CORRAL_HOST_TOOL_MISSING without the decompressor, CORRAL_HOST_COMMAND_FAILED when what comes
 * out is not an ELF file (`output` is then removed).
 */
export async function extractVmlinux(vmlinuz: string, output: string): Promise<void> {
  const { payload, format } = bzImagePayload(await readFile(vmlinuz));
  const file = await open(output, "w+");
  let stderr = "";
  try {
    const child = spawn(format.tool, ["-dc"], { stdio: ["pipe", file.fd, "pipe"] });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdin?.on("error", () => {});
    child.stdin?.end(payload);
    const [result] = (await Promise.race([once(child, "exit"), once(child, "error")])) as [
      number | Error | null,
    ];
    if (result instanceof Error) {
      throw new CorralError(
        ErrorCodes.HOST_TOOL_MISSING,
        `extracting vmlinux needs ${format.tool} (Debian package ${format.debianPackage}): ${result.message}`,
      );
    }
  } catch (error) {
    await file.close();
    await rm(output, { force: true });
    throw error;
  }
  const head = Buffer.alloc(4);
  await file.read(head, 0, 4, 0);
  await file.close();
  if (!head.equals(ELF_MAGIC)) {
    await rm(output, { force: true });
    throw new CorralError(
      ErrorCodes.HOST_COMMAND_FAILED,
      `${format.tool} -dc of ${vmlinuz}'s ${format.name} payload did not give an ELF kernel: ${stderr.trim() || "no output"}`,
    );
  }
}
