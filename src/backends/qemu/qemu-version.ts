// The installed QEMU's version line, read once per process.

import { runProgram } from "../../host/run-program.ts";

let version: Promise<string> | undefined;

/** The first line of `qemu-system-x86_64 --version`, e.g. "QEMU emulator version 7.2.15 (Debian …)". */
export function qemuVersion(): Promise<string> {
  version ??= runProgram("qemu-system-x86_64", ["--version"]).then(
    ({ stdout }) => stdout.split("\n")[0]?.trim() ?? "",
  );
  return version;
}
