#!/bin/sh
# mmdebstrap customize hook of the debian-12-cloud recipe, run on the host as root after
# debian-12's. Usage: customize.sh ROOTFS
# Adds cloud-init's settings for local VMs: only the seeds a local VM can have.
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
root=$1
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
cp -a "$here/overlay/." "$root/"
