#!/bin/bash
# bench_runtime.sh [RUNS]: `run` of /bin/true on one busybox bundle under runc, crun and
# sampan-runtime (entry-point script; fast launcher `python3 -I -S runtime_main.py` with the
# pyenv and the Debian interpreters), plus the breakdown of sampan-runtime's time:
# interpreter start, imports, and the rest (runtime work: fork, namespaces, mounts,
# pivot_root, exec, wait, state files).  Three bundles: runc's default spec (with the device
# cgroup), the same without linux.resources (no cgroup work at all), and Docker's defaults
# (seccomp profile, default capabilities, masked/read-only paths, cgroup namespace) with
# memory/pids/cpu limits (the bundle of `python -m bench runtime-run`).
set -euo pipefail
runs=${1:-40}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
export PYTHONPATH=$repo  # the entry-point variant imports this checkout (the -I launchers ignore it)
work=$(mktemp -d /tmp/bench-rt.XXXXXX)
trap 'rm -rf "$work"' EXIT
tarball=${SAMPAN_TEST_CACHE:-/var/tmp/sampan-test-cache}/busybox-rootfs.tar
[ -f "$tarball" ] || bash "$repo/scripts/mkimage-busybox.sh" "$tarball" >/dev/null
pyenv_py=$(python3 -c 'import sys; print(sys.executable)')
deb_py=/usr/bin/python3
# The launchers are symlinks named "rt" and the entry point is copied: test sessions running
# beside this (their leak checkers) kill processes with "sampan" in the command line.
entry_script=$(pyenv which sampan-runtime 2>/dev/null || command -v sampan-runtime)
cp "$entry_script" "$work/rt-entry"
entry="$(head -1 "$entry_script" | sed 's/^#!//') $work/rt-entry"
ln -s "$repo/sampan/runtime_main.py" "$work/rt"
main=$work/rt
for variant in cgroup nocgroup docker; do
  b=$work/$variant
  mkdir -p "$b/rootfs"
  tar -C "$b/rootfs" -xf "$tarball"
  (cd "$b" && runc spec)
  python3 - "$b/config.json" "$variant" "$repo" <<'PY'
import json, sys
path, variant, REPO = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
if variant == "nocgroup":
    c["linux"].pop("resources", None)
if variant == "docker":  # Docker's defaults: seccomp profile, 14 capabilities, masked paths
    sys.path.insert(0, REPO)
    from sampan.oci.defaults import default_config
    c = default_config(["/bin/true"])
    c["ociVersion"] = "1.0.2"
    # with cgroup limits, as bench/runtime.py's runtime-run bundle
    c["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}], "memory": {"limit": 256 << 20},
                               "pids": {"limit": 1024}, "cpu": {"shares": 1024}}
json.dump(c, open(path, "w"), indent=1)
PY
  cmds=(-n runc "runc --root $work/r-runc run -b $b bench-$variant-runc")
  if crun --root "$work/r-crun" run -b "$b" bench-probe-crun >/dev/null 2>&1; then
    cmds+=(-n crun "crun --root $work/r-crun run -b $b bench-$variant-crun")
  else
    echo "crun: skipped ($(crun --root "$work/r-crun" run -b "$b" bench-probe-crun 2>&1 | head -1))"
  fi
  cmds+=(-n "sampan-runtime (entry point, site)" "$entry --root $work/r-s1 run -b $b bench-$variant-s1")
  cmds+=(-n "sampan-runtime (pyenv python -I -S)" "$pyenv_py -I -S $main --root $work/r-s2 run -b $b bench-$variant-s2")
  cmds+=(-n "sampan-runtime (launcher: #!/usr/bin/python3 -IS)" "$main --root $work/r-s3 run -b $b bench-$variant-s3")
  echo "== bundle: $variant"
  hyperfine -N -w 5 -r "$runs" --export-markdown "$work/$variant.md" "${cmds[@]}" >/dev/null
  cat "$work/$variant.md"
done
echo "== breakdown (debian python -I -S)"
# the modules a real `run` imports (parent and child), from -X importtime
mods=$("$deb_py" -I -S -X importtime "$main" --root "$work/r-imp" run -b "$work/docker" bench-imp 2>&1 >/dev/null \
  | awk -F'|' '/^import time:/ {gsub(/ /, "", $3); if ($3 ~ /^sampan/) print $3}' | sort -u | paste -sd, -)
cat >"$work/imports.py" <<PY
import sys
sys.path[0] = "$repo"
import $mods
import os
os._exit(0)  # as the launcher leaves: no interpreter teardown
PY
hyperfine -N -w 5 -r "$runs" --export-markdown "$work/bd.md" \
  -n "interpreter start" "$deb_py -I -S -c pass" \
  -n "interpreter + imports" "$deb_py -I -S $work/imports.py" \
  -n "floor: unshare + chroot" "unshare -m -p -n -i -u -f chroot $work/nocgroup/rootfs /bin/true" >/dev/null
cat "$work/bd.md"
