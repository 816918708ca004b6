// Writes the `run-<name>-vm` start script of a built image, in the form of a NixOS one.

import { shellQuote } from "../guest/shell-quote.ts";

export interface StartScriptOptions {
  name: string;
  recipeHash: string;
  memoryMiB: number;
  cpus: number;
  kernelParams: string;
  /** Where the image's files are; default: the script's own folder. */
  imageDir?: string;
  /** NICs on VLANs, plugged into the switch at $QEMU_VDE_SOCKET_<vlan> as in NixOS scripts. */
  vlanNics?: { vlan: number; mac: string }[];
}

/**
 * The script execs QEMU with "$@" appended and honours QEMU_OPTS, QEMU_KERNEL_PARAMS, TMPDIR,
 * USE_TMPDIR and SHARED_DIR like a Nix-built one, so corral drives both the same way. The image's
 * files are found next to the script; the VM writes to a qcow2 overlay in $TMPDIR.
 */
export function renderStartScript(options: StartScriptOptions): string {
  const { name } = options;
  return `#!/bin/sh
# Starts the corral image ${name} (recipe ${options.recipeHash.slice(0, 12)}) in QEMU.
# Conventions of a NixOS run-<name>-vm script: extra QEMU arguments in "$@" and $QEMU_OPTS,
# kernel parameters in $QEMU_KERNEL_PARAMS, state in $TMPDIR (used as is when $USE_TMPDIR is
# set), the root disk overlay in $NIX_DISK_IMAGE (default: $TMPDIR/${name}.qcow2), a host folder
# shared as 9p tag "shared" in $SHARED_DIR, options of the user-mode network in $QEMU_NET_OPTS.
# That network is restricted: the guest reaches nothing through it; it carries only ports the
# host forwards in (forwardPort).
set -eu
${options.imageDir ? `here=${shellQuote(options.imageDir)}` : `here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)`}
${(options.vlanNics ?? [])
  .map(
    ({
      vlan,
    }) => `: "\${QEMU_VDE_SOCKET_${vlan}:?is not set: the socket of the switch of VLAN ${vlan} (corral test sets it)}"
`,
  )
  .join("")}if [ -z "\${TMPDIR:-}" ] || [ -z "\${USE_TMPDIR:-}" ]; then
  TMPDIR=$(mktemp -d corral-vm.XXXXXXXXXX --tmpdir)
fi
export TMPDIR
mkdir -p "$TMPDIR/xchg"
cd "$TMPDIR"
disk=\${NIX_DISK_IMAGE:-$TMPDIR/${name}.qcow2}
if [ ! -e "$disk" ]; then
  qemu-img create -q -f qcow2 -F qcow2 -b "$here/root.qcow2" "$disk"
fi
# shellcheck disable=SC2086 # QEMU_OPTS is split into words on purpose, as in NixOS scripts
exec qemu-system-x86_64 \\
  -name ${name} \\
  -machine q35 \\
  -m ${options.memoryMiB} \\
  -smp ${options.cpus} \\
  -nodefaults \\
  -vga std \\
  -device virtio-rng-pci \\
  -drive if=none,id=root,file="$disk",format=qcow2,cache=unsafe,discard=unmap,werror=report \\
  -device virtio-blk-pci,drive=root,bootindex=1 \\
  -device virtio-net-pci,netdev=user.0,mac=52:54:00:12:34:56 \\
  -netdev "user,id=user.0,restrict=on\${QEMU_NET_OPTS:+,$QEMU_NET_OPTS}" \\
${(options.vlanNics ?? [])
  .map(
    ({ vlan, mac }) => `  -device virtio-net-pci,netdev=vlan${vlan},mac=${mac} \\
  -netdev "vde,id=vlan${vlan},sock=$QEMU_VDE_SOCKET_${vlan}" \\
`,
  )
  .join("")}  -kernel "$here/vmlinuz" \\
  -initrd "$here/initrd" \\
  -append "${options.kernelParams} \${QEMU_KERNEL_PARAMS:-}" \\
  \${SHARED_DIR:+-virtfs} \${SHARED_DIR:+"local,path=$SHARED_DIR,security_model=none,mount_tag=shared"} \\
  \${QEMU_OPTS:-} \\
  "$@"
`;
}
