// The QEMU arguments corral appends to a start script's command line, as the NixOS driver does:
// the machine's name, its monitor, the guest shell's console and ports, the serial console on stdio.

import { STDERR_PORT, STDOUT_PORT, XFER_PORT } from "../../guest/shell-framing.ts";
import type { Accelerator } from "../../host/accelerator.ts";
import type { VlanNic } from "../backend.ts";

/** Unix sockets corral listens on; QEMU connects each chardev to one of them. */
export interface RuntimeSockets {
  qmp: string;
  /** hvc0, the backdoor shell. */
  shell: string;
  /** The `corral.stdout` and `corral.stderr` ports: output of guest commands. */
  stdout: string;
  stderr: string;
  /** The `corral.xfer` port: file contents for copyFromHost/copyFromVm. */
  xfer: string;
}

export interface RuntimeArgsOptions {
  /** The machine's name: a start script names the guest after its image, and a later -name wins. */
  name: string;
  accelerator: Accelerator;
  sockets: RuntimeSockets;
  allowReboot: boolean;
  cpus?: number | undefined;
  memoryMiB?: number | undefined;
  nics?: readonly VlanNic[] | undefined;
}

export function runtimeArgs(options: RuntimeArgsOptions): string[] {
  const { sockets } = options;
  const port = (id: string, path: string, device: string) => [
    ...["-chardev", `socket,id=${id},path=${path}`],
    ...["-device", device.replace("@", id)],
  ];
  return [
    // QEMU reads a comma in an option value as the start of the next key; ",," is a literal one.
    ...["-name", `guest=${options.name.replaceAll(",", ",,")}`],
    ...["-accel", options.accelerator, "-cpu", options.accelerator === "kvm" ? "host" : "max"],
    ...["-display", "none", "-serial", "stdio"],
    ...[
      "-chardev",
      `socket,id=corral-qmp,path=${sockets.qmp}`,
      "-mon",
      "chardev=corral-qmp,mode=control",
    ],
    ...["-device", "virtio-serial,id=corral-serial"],
    ...port("shell", sockets.shell, "virtconsole,chardev=@,bus=corral-serial.0"),
    ...port(
      "corral-stdout",
      sockets.stdout,
      `virtserialport,chardev=@,bus=corral-serial.0,name=${STDOUT_PORT}`,
    ),
    ...port(
      "corral-stderr",
      sockets.stderr,
      `virtserialport,chardev=@,bus=corral-serial.0,name=${STDERR_PORT}`,
    ),
    ...port(
      "corral-xfer",
      sockets.xfer,
      `virtserialport,chardev=@,bus=corral-serial.0,name=${XFER_PORT}`,
    ),
    ...(options.cpus ? ["-smp", String(options.cpus)] : []),
    ...(options.memoryMiB ? ["-m", String(options.memoryMiB)] : []),
    ...(options.nics ?? []).flatMap((nic) => [
      ...["-netdev", `vde,id=vlan${nic.vlan},sock=${nic.switchSocket}`],
      ...["-device", `virtio-net-pci,netdev=vlan${nic.vlan},mac=${nic.mac}`],
    ]),
    ...(options.allowReboot ? [] : ["-no-reboot"]),
  ];
}
