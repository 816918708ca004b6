// The QEMU arguments corral appends to a start script's command line, as the NixOS driver does:
// its process name, its monitor, the guest shell's console and ports, the serial console. An
// owned VM's chardevs dial sockets corral listens on and its serial console is QEMU's stdio; a
// persistent VM's chardevs listen themselves, and its serial console is a socket too, logged to
// a file that outlives any corral process. The guest agent's port is added when asked for.

import { STDERR_PORT, STDOUT_PORT, XFER_PORT } from "../../guest/shell-framing.ts";
import type { Accelerator } from "../../host/accelerator.ts";
import type { MachineType, Ownership, VmNic } from "../backend.ts";
import { sizeArgs } from "./hotplug.ts";
import { type GuestMemory, memoryArgs } from "./memory-backend.ts";
import { type QemuSocketName, QGA_REDIAL_S } from "./qemu-sockets.ts";

/** The virtio-serial port name qemu-ga opens in the guest. */
export const QGA_PORT = "org.qemu.guest_agent.0";

export interface RuntimeArgsOptions {
  name: string;
  ownership: Ownership;
  accelerator: Accelerator;
  sockets: Partial<Record<QemuSocketName, string>>;
  /** A persistent VM's serial console log. */
  consoleLog?: string;
  allowReboot: boolean;
  cpus?: number | undefined;
  memoryMiB?: number | undefined;
  maxCpus?: number | undefined;
  maxMemoryMiB?: number | undefined;
  nics?: readonly VmNic[] | undefined;
  /** What backs the guest's RAM; undefined: QEMU's own. */
  memory?: GuestMemory | undefined;
  // --- machine profile ---
  /** The chipset, for the RAM's id; undefined: a start script's `pc`. */
  machineType?: MachineType | undefined;
  /** Devices on virtio-mmio (a microvm) instead of PCI. */
  isMmio?: boolean | undefined;
  /** Features added to the `-cpu` model (Hyper-V enlightenments). */
  cpuFeatures?: readonly string[] | undefined;
}

export function runtimeArgs(options: RuntimeArgsOptions): string[] {
  const { sockets } = options;
  const isServer = options.ownership === "persistent";
  const chardev = (id: string, name: QemuSocketName, extra = "") =>
    `socket,id=${id},path=${sockets[name]}${isServer ? ",server=on,wait=off" : ""}${extra}`;
  const port = (id: string, name: QemuSocketName, device: string, extra = "") => [
    ...["-chardev", chardev(id, name, extra)],
    ...["-device", device.replace("@", id)],
  ];
  // An owned VM's agent chardev dials again after corral's client closed its stream.
  const qga = sockets.qga
    ? port(
        "corral-qga",
        "qga",
        `virtserialport,chardev=@,bus=corral-serial.0,name=${QGA_PORT}`,
        isServer ? "" : `,reconnect=${QGA_REDIAL_S}`,
      )
    : [];
  const bus = options.isMmio ? "device" : "pci";
  const cpu = [options.accelerator === "kvm" ? "host" : "max", ...(options.cpuFeatures ?? [])];
  const serial = isServer
    ? [
        ...[
          "-chardev",
          chardev("corral-console", "console", `,logfile=${options.consoleLog},logappend=on`),
        ],
        ...["-serial", "chardev:corral-console"],
      ]
    : ["-serial", "stdio"];
  return [
    // A later -name wins over the start script's, so QEMU is named after its machine. QEMU reads
    // a comma in an option value as the start of the next key; ",," is a literal one.
    ...["-name", `guest=${options.name.replaceAll(",", ",,")}`],
    ...["-accel", options.accelerator, "-cpu", cpu.join(",")],
    ...["-display", "none", ...serial],
    ...["-chardev", chardev("corral-qmp", "qmp"), "-mon", "chardev=corral-qmp,mode=control"],
    ...["-device", `virtio-serial-${bus},id=corral-serial`],
    ...port("shell", "shell", "virtconsole,chardev=@,bus=corral-serial.0"),
    ...port(
      "corral-stdout",
      "stdout",
      `virtserialport,chardev=@,bus=corral-serial.0,name=${STDOUT_PORT}`,
    ),
    ...port(
      "corral-stderr",
      "stderr",
      `virtserialport,chardev=@,bus=corral-serial.0,name=${STDERR_PORT}`,
    ),
    ...port(
      "corral-xfer",
      "xfer",
      `virtserialport,chardev=@,bus=corral-serial.0,name=${XFER_PORT}`,
    ),
    ...qga,
    ...sizeArgs(options),
    ...(options.memory ? memoryArgs(options.memory, options.machineType) : []),
    ...nicArgs(options.nics ?? [], bus),
    ...(options.allowReboot ? [] : ["-no-reboot"]),
  ];
}

/**
 * A NIC per VLAN switch (netdev `vlan<n>`) or TAP device (netdev `tap<i>`, `i` its place in the
 * list). A TAP is opened by name: corral made it and put it on its bridge, so no ifup script runs.
 */
function nicArgs(nics: readonly VmNic[], bus: "device" | "pci"): string[] {
  return nics.flatMap((nic, index) => {
    const [id, netdev] =
      nic.kind === "tap"
        ? [`tap${index}`, `tap,id=tap${index},ifname=${nic.ifname},script=no,downscript=no`]
        : [`vlan${nic.vlan}`, `vde,id=vlan${nic.vlan},sock=${nic.switchSocket}`];
    return ["-netdev", netdev, "-device", `virtio-net-${bus},netdev=${id},mac=${nic.mac}`];
  });
}
