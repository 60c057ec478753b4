#!/bin/bash
# install.sh: on a fresh Debian 12 machine, as root: install every system package and the
# Python package (editable, from this checkout), make the tutorial's base images once, then run
# the main job (scripts/walkthrough.sh).
# The Debian image (debootstrap from the configured mirror, a few minutes, ~120 MB) is made only
# when missing; SAMPAN_NO_DEBIAN=1 skips it (the walkthrough then skips its "bash" chapter).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cache=${SAMPAN_TEST_CACHE:-/var/tmp/sampan-test-cache}
mkdir -p "$cache"
[ -s "$cache/busybox-rootfs.tar" ] || bash scripts/mkimage-busybox.sh "$cache/busybox-rootfs.tar" >/dev/null
if [ "${SAMPAN_NO_DEBIAN:-0}" != 1 ] && [ ! -s "$cache/debian-bookworm-rootfs.tar" ]; then
  echo "install: making the Debian base image once (debootstrap, a few minutes; SAMPAN_NO_DEBIAN=1 skips it)"
  bash scripts/mkimage-debian.sh "$cache/debian-bookworm-rootfs.tar" >/dev/null \
    || echo "install: no Debian image (debootstrap failed); the walkthrough skips its bash chapter"
fi
exec bash scripts/walkthrough.sh
