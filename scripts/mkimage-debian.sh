#!/bin/bash
# mkimage-debian.sh OUTPUT.tar [SUITE]
# Make a Debian root filesystem tar with debootstrap (variant minbase) from the machine's
# configured Debian mirror. `sampan import -c 'CMD ["bash"]' OUTPUT.tar debian:bookworm`
# turns it into an image.
set -euo pipefail
out=${1:?usage: mkimage-debian.sh OUTPUT.tar [SUITE]}
suite=${2:-bookworm}
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null
mirror=$(awk '$1=="deb" && $0 ~ /debian/ {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/mkimage-debian.XXXXXX)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# no package caches or logs in the image; device nodes are made by the runtime
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/log/*.log
find "$work/rootfs/dev" -mindepth 1 -delete
tmp=$out.tmp.$$
tar -C "$work/rootfs" --sort=name --numeric-owner --mtime=@1700000000 -cf "$tmp" .
mv "$tmp" "$out"
echo "$out"
