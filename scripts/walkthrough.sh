#!/bin/bash
# walkthrough.sh: the main job — the tutorial's walkthrough as far as sampan does it today.
# It talks to the daemon on the default socket (/run/sampan/sampan.sock); the CLI starts one
# in the background if none answers. Set SAMPAN_HOST=unix:///path to use another daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }
cache=${SAMPAN_TEST_CACHE:-/var/tmp/sampan-test-cache}
mkdir -p "$cache"
[ -s "$cache/busybox-rootfs.tar" ] || bash scripts/mkimage-busybox.sh "$cache/busybox-rootfs.tar" >/dev/null

# 1. images: make busybox without a registry, list, inspect, save and load it back
run sampan version
run sampan import -c 'CMD ["sh"]' -m "busybox from Debian's busybox-static" "$cache/busybox-rootfs.tar" busybox:latest
run sampan images
run sampan tag busybox:latest busybox:tutorial
run sampan image inspect -f '{{.Id}} {{json .Config.Cmd}} {{.Architecture}}' busybox
run sampan history busybox
run sampan save -o /tmp/busybox-saved.tar busybox:latest busybox:tutorial
run sampan rmi busybox:tutorial busybox:latest
run sampan load -i /tmp/busybox-saved.tar
run sampan images
run sampan system df
rm -f /tmp/busybox-saved.tar

# 2. builds: the tutorial's Dockerfile chapter example (examples/hello-docker): build it, rebuild
#    it from the cache, run it with a published port and fetch /dockerfile ("hello docker")
sampan rm -f user01 >/dev/null 2>&1 || true
run sampan build -t test-docker-image examples/hello-docker
run sampan build -t test-docker-image examples/hello-docker
run sampan history test-docker-image
run sampan run -d --name user01 -p 6666:8080 test-docker-image
say "curl localhost:6666/dockerfile"
for _ in $(seq 50); do curl -fsS localhost:6666/dockerfile 2>/dev/null && break; sleep 0.1; done
run sampan rm -f user01
echo
echo "walkthrough: done (the daemon keeps running; stop it with: kill \$(cat /run/sampan/sampand.pid))"
