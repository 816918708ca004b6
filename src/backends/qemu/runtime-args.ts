// The QEMU arguments corral appends to a start script's command line, as the NixOS driver does.

import type { Accelerator } from "../../host/accelerator.ts";

export interface RuntimeArgsOptions {
  accelerator: Accelerator;
  /** Unix socket corral listens on; QEMU connects the guest's hvc0 to it. */
  shellSocket: string;
  allowReboot: boolean;
}

export function runtimeArgs(options: RuntimeArgsOptions): string[] {
  return [
    ...["-accel", options.accelerator, "-cpu", options.accelerator === "kvm" ? "host" : "max"],
    ...["-display", "none", "-serial", "stdio"],
    ...["-chardev", `socket,id=shell,path=${options.shellSocket}`],
    ...["-device", "virtio-serial", "-device", "virtconsole,chardev=shell"],
    ...(options.allowReboot ? [] : ["-no-reboot"]),
  ];
}
