// Real image files for tests of image imports, made with qemu-img and xorriso, and an
// ImageService over a temporary store and state folder.

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { ImageService } from "../../src/manager/images.ts";
import type { Store } from "../../src/store/store.ts";
import { temporaryDir } from "./cli.ts";
import { temporaryStore } from "./store.ts";

/** Runs a host program; throws with its stderr when it fails. */
export function run(program: string, args: string[]): string {
  const result = spawnSync(program, args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${program} ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

export function sha256Of(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/**
 * A 1 MiB raw disk whose boot sector (real-mode x86) writes `text` to the first serial port and
 * halts: a boot loader of its own, as an imported disk has.
 */
export function serialBootDisk(path: string, text: string): void {
  const code = [
    ...[0x31, 0xc0, 0x8e, 0xd8], // xor ax, ax; mov ds, ax
    ...[0xbe, 0x16, 0x7c], // mov si, 0x7c16 (the text)
    ...[0xba, 0xf8, 0x03], // mov dx, 0x3f8 (COM1)
    ...[0xac, 0x84, 0xc0, 0x74, 0x03], // next: lodsb; test al, al; jz done
    ...[0xee, 0xeb, 0xf8], // out dx, al; jmp next
    ...[0xfa, 0xf4, 0xeb, 0xfd], // done: cli; hlt; jmp $-1
  ];
  const disk = Buffer.alloc(1024 * 1024);
  Buffer.from(code).copy(disk, 0);
  disk.write(`${text}\r\n\0`, code.length, "latin1");
  disk.writeUInt16LE(0xaa55, 510);
  writeFileSync(path, disk);
}

/** Image files of every kind a test needs, in `dir` (default: a new one, removed after the test). */
export function makeImageFiles(dir = temporaryDir("corral-image-files-")) {
  mkdirSync(dir, { recursive: true });
  const at = (name: string) => join(dir, name);
  run("qemu-img", ["create", "-q", "-f", "qcow2", at("disk.qcow2"), "16M"]);
  run("qemu-img", ["create", "-q", "-f", "raw", at("disk.raw"), "8M"]);
  writeFileSync(at("disk.raw"), "corral raw disk\n", { flag: "r+" });
  run("qemu-img", ["create", "-q", "-f", "vmdk", at("disk.vmdk"), "8M"]);
  run("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-F",
    "qcow2",
    "-b",
    "disk.qcow2",
    at("top.qcow2"),
  ]);
  run("qemu-img", [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-o",
    `data_file=${at("data.bin")}`,
    at("external.qcow2"),
    "8M",
  ]);
  mkdirSync(at("iso-root"));
  writeFileSync(at("iso-root/hello.txt"), "hello from the ISO\n");
  run("xorriso", ["-as", "mkisofs", "-quiet", "-V", "CORRAL", "-o", at("cd.iso"), at("iso-root")]);
  return {
    dir,
    qcow2: at("disk.qcow2"),
    raw: at("disk.raw"),
    vmdk: at("disk.vmdk"),
    backed: at("top.qcow2"),
    external: at("external.qcow2"),
    iso: at("cd.iso"),
  };
}

/** An ImageService over a new temporary store and state folder, closed when the test ends. */
export async function temporaryImageService(): Promise<{
  images: ImageService;
  store: Store;
  stateDir: string;
}> {
  const store = await temporaryStore();
  const stateDir = temporaryDir("corral-state-");
  const images = new ImageService(store, stateDir);
  onTestFinished(() => images.close());
  return { images, store, stateDir };
}
