#!/bin/sh
# mmdebstrap customize hook for the debian-12 recipe, run on the host as root.
# Usage: customize.sh ROOTFS OUTDIR KERNEL_META_PACKAGE
# Unpacks the kernel, trims the system for fast test boots, installs the backdoor shell, and
# writes kernel and package versions to OUTDIR for the manifest.
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
root=$1 out=$2 kernel_meta=$3
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

# The kernel: the versioned package behind the meta package, unpacked without dpkg so that no
# initramfs generator runs in the chroot (corral builds its own small initramfs).
kernel_pkg=$(chroot "$root" apt-cache depends --important "$kernel_meta" |
  sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1)
if [ -z "$kernel_pkg" ]; then
  echo "customize: cannot resolve the package behind $kernel_meta" >&2
  exit 1
fi
chroot "$root" sh -c "cd /tmp && apt-get download -q=2 $kernel_pkg"
deb=$(ls "$root/tmp/${kernel_pkg}"_*.deb)
printf '%s\t%s\n' "$kernel_pkg" "$(dpkg-deb -f "$deb" Version)" >"$out/kernel-package.tsv"
# --keep-directory-symlink: /lib is a symlink to usr/lib in a merged-/usr system.
dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root"
rm -f "$deb"
kernel_release=${kernel_pkg#linux-image-}
chroot "$root" depmod -a "$kernel_release"
cp "$root/boot/vmlinuz-$kernel_release" "$out/vmlinuz"
printf '%s\n' "$kernel_release" >"$out/kernel-release"

# Files of the recipe: the backdoor service, journald settings.
cp -a "$here/overlay/." "$root/"
chmod 0755 "$root"/usr/local/lib/corral/*

echo corral >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcorral\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
  >"$root/etc/hosts"
# x-systemd.growfs: a root disk made larger than the image (diskGiB) gets a filesystem to match.
printf '/dev/vda\t/\text4\tdefaults,noatime,x-systemd.growfs\t0\t0\n' >"$root/etc/fstab"
# A fixed machine id: an empty one makes systemd run its first-boot units on every boot.
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
echo >>"$root/etc/machine-id"

chroot "$root" systemctl enable backdoor.service corral-backdoor-weight.service corral-clock.service
# Generators run at every boot before systemd loads a unit: under TCG each is a process start of
# 0.1-0.3 s, on the way to the backdoor shell. Only fstab's (the root's mount and growfs) and
# debug's (systemd.mask= and systemd.wants= on the kernel command line) do anything here: no
# encrypted, verity or GPT-discovered disks, no hibernation, no gettys, no SysV-only services.
mkdir -p "$root/etc/systemd/system-generators"
for generator in cryptsetup getty gpt-auto hibernate-resume integritysetup rc-local run \
  system-update sysv veritysetup; do
  ln -sf /dev/null "$root/etc/systemd/system-generators/systemd-$generator-generator"
done
# Only the units a test VM needs: no login prompts, no periodic maintenance, no system users made
# at boot (the packages made theirs when the image was built).
chroot "$root" systemctl mask \
  getty.target getty@.service serial-getty@.service console-getty.service \
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
  e2scrub_reap.service fstrim.timer systemd-pstore.service systemd-firstboot.service \
  sys-kernel-debug.mount sys-kernel-tracing.mount dev-hugepages.mount dev-mqueue.mount \
  systemd-journal-flush.service systemd-update-utmp.service systemd-update-utmp-runlevel.service \
  modprobe@drm.service modprobe@dm_mod.service modprobe@fuse.service modprobe@configfs.service \
  sys-fs-fuse-connections.mount sys-kernel-config.mount systemd-sysusers.service

chroot "$root" dpkg-query -W -f '${Package}\t${Version}\n' >"$out/packages.tsv"
