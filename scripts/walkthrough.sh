#!/bin/bash
# walkthrough.sh: the main job — the tutorial's walkthrough as far as sampan does it today:
# images, containers, networking with published ports, a registry, and a Dockerfile build.
# It talks to the daemon on the default socket (/run/sampan/sampan.sock); the CLI starts one
# in the background if none answers. Set SAMPAN_HOST=unix:///path to use another daemon.
# Re-runnable: it removes what an earlier run left (its own names only).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }
cache=${SAMPAN_TEST_CACHE:-/var/tmp/sampan-test-cache}
port_web=${WALKTHROUGH_WEB_PORT:-9090}
port_app=${WALKTHROUGH_APP_PORT:-6666}
port_reg=${WALKTHROUGH_REGISTRY_PORT:-5055}
mkdir -p "$cache"
[ -s "$cache/busybox-rootfs.tar" ] || bash scripts/mkimage-busybox.sh "$cache/busybox-rootfs.tar" >/dev/null
sampan rm -f walkthrough-web walkthrough-app walkthrough-sleep >/dev/null 2>&1 || true

echo "== 1. images: make busybox without a registry, list, inspect, save and load it back"
run sampan version
run sampan import -c 'CMD ["sh"]' -m "busybox from Debian's busybox-static" "$cache/busybox-rootfs.tar" busybox:latest
run sampan images
run sampan tag busybox:latest busybox:tutorial
run sampan image inspect -f '{{.Id}} {{json .Config.Cmd}} {{.Architecture}}' busybox
run sampan history busybox
run sampan save -o /tmp/walkthrough-busybox.tar busybox:latest busybox:tutorial
run sampan rmi busybox:tutorial
run sampan load -i /tmp/walkthrough-busybox.tar
rm -f /tmp/walkthrough-busybox.tar

echo "== 2. containers: run, logs, exec, limits, stop, rm"
run sampan run --rm busybox echo "hello from a container"
run sampan run -d --name walkthrough-sleep --init --memory 64m busybox sleep 1000
run sampan ps
run sampan exec walkthrough-sleep sh -c 'echo pid 1 is $(cat /proc/1/comm); hostname'
run sampan stats --no-stream walkthrough-sleep
run sampan logs walkthrough-sleep
run sampan stop -t 1 walkthrough-sleep
run sampan rm walkthrough-sleep

echo "== 3. networking: a web server on the default bridge, published on port $port_web"
run sampan run -d --name walkthrough-web -p "$port_web:8080" busybox httpd -f -p 8080 -h /var/www
run sampan port walkthrough-web
for i in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port_web/" >/dev/null 2>&1 && break; sleep 0.1; done
run curl -fsS "http://127.0.0.1:$port_web/"
run sampan inspect -f '{{.NetworkSettings.IPAddress}}' walkthrough-web
run sampan rm -f walkthrough-web

echo "== 4. a registry: sampan's own server on 127.0.0.1:$port_reg, push and pull"
regdir=$(mktemp -d /tmp/walkthrough-registry.XXXXXX)
sampan registry serve --addr "127.0.0.1:$port_reg" --storage "$regdir" >"$regdir.log" 2>&1 &
regpid=$!
trap 'kill $regpid 2>/dev/null; rm -rf "$regdir" "$regdir.log"' EXIT
for i in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port_reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
run sampan tag busybox:latest "127.0.0.1:$port_reg/tutorial/busybox:1"
run sampan push "127.0.0.1:$port_reg/tutorial/busybox:1"
run sampan rmi "127.0.0.1:$port_reg/tutorial/busybox:1"
run sampan pull "127.0.0.1:$port_reg/tutorial/busybox:1"
run curl -fsS "http://127.0.0.1:$port_reg/v2/_catalog"
echo

echo "== 5. a Dockerfile: build the tutorial's example and serve it on port $port_app"
run sampan build -t test-docker-image examples/hello-docker
run sampan run -d --name walkthrough-app -p "$port_app:8080" test-docker-image
for i in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port_app/dockerfile" >/dev/null 2>&1 && break; sleep 0.1; done
run curl -fsS "http://127.0.0.1:$port_app/dockerfile"
run sampan rm -f walkthrough-app

run sampan system df
echo
echo "walkthrough: done (the daemon keeps running; stop it with: kill \$(cat /run/sampan/sampand.pid))"
