#!/bin/bash
# test.sh: the whole test suite, as root on Debian 12 (README's second set-up command; .ci/run
# calls it). Phases, each timed:
#   deps       system packages and Python dependencies (scripts/deps.sh)
#   lint       ruff, mypy --strict, import-linter (the layers of DESIGN.md)
#   images     base image tars built once into $SAMPAN_TEST_CACHE (outside the clone)
#   unit       tests/unit (no root needed)
#   system     tests/integration and tests/e2e as root, with no peer engine running
#   bench      every bench scenario once for sampan, as a smoke check (no ratios)
#   peers      ../shared/peers/setup.sh, the tests marked `peers` (sampan beside dockerd, podman,
#              skopeo), then stop.sh — skipped with SAMPAN_SKIP_PEERS=1 or when ../shared is absent
set -uo pipefail
cd "$(dirname "$0")/.."
export SAMPAN_TEST_CACHE=${SAMPAN_TEST_CACHE:-/var/tmp/sampan-test-cache}
PY=${PYTHON:-python3}
failed=()
total_start=$(date +%s)

phase() {  # phase NAME COMMAND...
  local name=$1; shift
  local t0=$EPOCHREALTIME
  echo "=== phase $name"
  "$@"
  local rc=$?
  # pytest exit 5 = no tests collected in this selection: not a failure of the phase
  [ "$rc" = 5 ] && rc=0
  printf '=== phase %s: %s in %.1f s\n' "$name" "$([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)")" \
    "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')"
  [ "$rc" = 0 ] || failed+=("$name")
  return 0
}

lint() {
  local rc=0
  "$PY" -m ruff check sampan tests bench || rc=1
  "$PY" -m mypy || rc=1
  lint-imports pyproject.toml || rc=1
  return $rc
}

base_images() {
  mkdir -p "$SAMPAN_TEST_CACHE"
  [ -s "$SAMPAN_TEST_CACHE/busybox-rootfs.tar" ] || bash scripts/mkimage-busybox.sh "$SAMPAN_TEST_CACHE/busybox-rootfs.tar"
}

peers() {
  local shared=../shared/peers
  if [ -n "${SAMPAN_SKIP_PEERS:-}" ] || [ ! -x "$shared/setup.sh" -a ! -f "$shared/setup.sh" ]; then
    echo "peers: skipped"; return 0
  fi
  bash "$shared/setup.sh" || { echo "peers: setup.sh failed"; bash "$shared/stop.sh" >/dev/null 2>&1; return 1; }
  local rc=0
  "$PY" -m pytest -q -m peers tests
  local prc=$?; [ $prc = 0 -o $prc = 5 ] || rc=1
  # setup.sh mounted hugetlb as a v1 hierarchy, so crun runs now: the runtime's differential
  # tests compare sampan-runtime with crun here (they skip crun in the system phase)
  "$PY" -m pytest -q tests/integration/runtime/test_runtime_differential.py -k crun
  prc=$?; [ $prc = 0 -o $prc = 5 ] || rc=1
  "$PY" -m bench --smoke --peers || rc=1
  bash "$shared/stop.sh" || true
  return $rc
}

phase deps bash scripts/deps.sh
phase lint lint
phase images base_images
phase unit "$PY" -m pytest -q tests/unit
phase system "$PY" -m pytest -q -m "not peers" tests/integration tests/e2e
phase bench "$PY" -m bench --smoke
phase peers peers

printf '=== total %d s\n' "$(( $(date +%s) - total_start ))"
if [ ${#failed[@]} -gt 0 ]; then
  echo "=== FAILED phases: ${failed[*]}"
  exit 1
fi
echo "=== all phases passed"
