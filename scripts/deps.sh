#!/bin/bash
# deps.sh: install every system package and Python dependency sampan, its tests and its
# benchmarks need on a Debian 12 machine (run as root). Idempotent; quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="busybox-static nftables iproute2 debootstrap tar zstd pigz procps psmisc curl jq socat
      smem hyperfine libseccomp2 runc crun skopeo umoci podman uidmap docker.io docker-registry tini
      iptables chromium git"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "deps: installing Debian packages:$missing"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null
fi
PY=${PYTHON:-python3}
if ! "$PY" -I -c 'import sampan, aiohttp, isal, zstandard, bcrypt, pytest, pytest_timeout, docker, mypy, importlinter, dockerfile, jsonschema, yaml' 2>/dev/null \
   || [ "$("$PY" -I -c 'import sampan,os;print(os.path.dirname(os.path.dirname(sampan.__file__)))' 2>/dev/null)" != "$PWD" ]; then
  echo "deps: installing sampan and its Python dependencies with $PY -m pip"
  # compat mode: a plain path in a .pth file; the default finder costs the CLI ~13 ms of imports
  "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[test]' --config-settings editable_mode=compat
fi
command -v pyenv >/dev/null 2>&1 && pyenv rehash 2>/dev/null || true
# PYTHONDONTWRITEBYTECODE may be set in the environment: compile once so the CLI starts fast
"$PY" -m compileall -q sampan >/dev/null 2>&1 || true
echo "deps: ok"
