#!/bin/bash
# walkthrough.sh: the main job — the tutorial (../shared/tutorial, docs/tutorial.md) chapter by
# chapter, as far as one machine without the internet goes: images, first containers (a
# tomcat-like web server and a mysql-like server with -p/-e/--privileged), exec, the Debian
# "bash" container, Dockerfile builds, a registry with login/tag/push/pull, commit, resource
# limits and stats, the container commands, namespaces/cgroups/union filesystem, and networking
# (the bridge and its veths, network namespaces, user networks, names, published ports).
#
# It talks to the daemon on the default socket (/run/sampan/sampan.sock); the CLI starts one in
# the background if none answers. Set SAMPAN_HOST=unix:///path to use another daemon.
# Variables (defaults in brackets), so that a test daemon never meets fixed ports or names:
#   WALKTHROUGH_WEB_PORT [9090] WALKTHROUGH_DB_PORT [3301] WALKTHROUGH_APP_PORT [6666]
#   WALKTHROUGH_APP2_PORT [8081] WALKTHROUGH_REGISTRY_PORT [5055]: host ports it publishes/serves
#   WALKTHROUGH_SUBNET [the daemon's pool]: subnet of its user network walkthrough-net
#   WALKTHROUGH_NET_BRIDGE [br-<id>]: bridge name of that network
#   WALKTHROUGH_DEBIAN [auto]: 0 skips the Debian "bash" chapter; auto runs it when the Debian
#     rootfs is in the cache ($SAMPAN_TEST_CACHE/debian-bookworm-rootfs.tar; scripts/install.sh
#     makes it once with scripts/mkimage-debian.sh)
# Re-runnable: it removes what an earlier run left (its own names only), and again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }
chapter() { printf '\n== %s\n' "$*"; }
wait_tcp() { for _ in $(seq 1 50); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 0; }
cache=${SAMPAN_TEST_CACHE:-/var/tmp/sampan-test-cache}
port_web=${WALKTHROUGH_WEB_PORT:-9090}
port_db=${WALKTHROUGH_DB_PORT:-3301}
port_app=${WALKTHROUGH_APP_PORT:-6666}
port_app2=${WALKTHROUGH_APP2_PORT:-8081}
port_reg=${WALKTHROUGH_REGISTRY_PORT:-5055}
debian_tar=$cache/debian-bookworm-rootfs.tar
mkdir -p "$cache"
[ -s "$cache/busybox-rootfs.tar" ] || bash scripts/mkimage-busybox.sh "$cache/busybox-rootfs.tar" >/dev/null

containers="walkthrough-sleep walkthrough-web walkthrough-tomcat walkthrough-mysql walkthrough-debian
  walkthrough-user01 walkthrough-user02 walkthrough-pulled walkthrough-tomcat1 walkthrough-tomcat2
  walkthrough-commit walkthrough-t01 walkthrough-t02 walkthrough-app"
work=$(mktemp -d /tmp/walkthrough.XXXXXX)
regpid=""
cleanup() {
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
  # shellcheck disable=SC2086
  sampan rm -fv $containers >/dev/null 2>&1 || true
  sampan network rm walkthrough-net >/dev/null 2>&1 || true
  sampan rmi walkthrough-committed:v1 "127.0.0.1:$port_reg/itcrazy2016/test-docker-image" tomcat-like mysql-like \
    busybox:tutorial >/dev/null 2>&1 || true
  rm -rf "$work"
}
cleanup_start() { local keep=$work; work=/nonexistent; cleanup; work=$keep; }
cleanup_start
# an earlier run's build and busybox: removed once this run has its own (rmi without -f: never
# an image that another tag, a child image or a container still uses)
old_images="$(sampan images -q --no-trunc test-docker-image 2>/dev/null || true) $(sampan images -q --no-trunc busybox:latest 2>/dev/null || true)"
trap cleanup EXIT

chapter "1. images: make busybox without a registry, list, inspect, save and load it back"
run sampan version
run sampan import -c 'CMD ["sh"]' -m "busybox from Debian's busybox-static" "$cache/busybox-rootfs.tar" busybox:latest
run sampan images
run sampan tag busybox:latest busybox:tutorial
run sampan image inspect -f '{{.Id}} {{json .Config.Cmd}} {{.Architecture}}' busybox
run sampan history busybox
run sampan save -o "$work/busybox.tar" busybox:latest busybox:tutorial
run sampan rmi busybox:tutorial
run sampan load -i "$work/busybox.tar"
run sampan image ls busybox
run sampan run --rm "$(sampan images -q busybox:latest)" echo "run by image ID"

chapter "2. first containers (docker初体验): hello-world, a tomcat-like and a mysql-like server, exec"
# No Docker Hub here: busybox stands in for hello-world, tomcat (httpd on 8080) and mysql (nc on 3306).
run sampan run --rm busybox echo "Hello from sampan! (the hello-world stand-in)"
run sampan tag busybox tomcat-like
run sampan tag busybox mysql-like
run sampan run -d --name walkthrough-tomcat -p "$port_web:8080" tomcat-like httpd -f -p 8080 -h /etc
wait_tcp "http://127.0.0.1:$port_web/hostname"
say "curl http://127.0.0.1:$port_web/hostname"
curl -fsS "http://127.0.0.1:$port_web/hostname"
run sampan run -d --name walkthrough-mysql -p "$port_db:3306" -e MYSQL_ROOT_PASSWORD=jack123 --privileged mysql-like \
  sh -c 'echo "mysql-like: root password is $MYSQL_ROOT_PASSWORD" >/greeting; exec nc -ll -p 3306 -e cat /greeting'
say "read the mysql-like greeting from 127.0.0.1:$port_db"
for _ in $(seq 1 50); do
  greeting=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port_db && cat <&3" 2>/dev/null || true)
  [ -n "$greeting" ] && break
  sleep 0.1
done
echo "$greeting"
# docker exec -it CONTAINER bash needs a terminal: a script runs the same command without -it
run sampan exec walkthrough-mysql sh -c 'echo "MYSQL_ROOT_PASSWORD=$MYSQL_ROOT_PASSWORD"; grep CapEff /proc/self/status'
run sampan exec walkthrough-mysql sh -c 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo "privileged: mount works"'
run sampan ps

chapter "3. the Debian \"bash\" container (exec ... bash)"
if [ "${WALKTHROUGH_DEBIAN:-auto}" = 0 ]; then
  echo "skipped: WALKTHROUGH_DEBIAN=0"
elif [ ! -s "$debian_tar" ]; then
  echo "skipped: no Debian image in the cache ($debian_tar); make it once with:"
  echo "  bash scripts/mkimage-debian.sh $debian_tar   (debootstrap: a few minutes)"
else
  sampan image inspect debian:bookworm >/dev/null 2>&1 \
    || run sampan import -c 'CMD ["bash"]' -m "Debian bookworm (debootstrap minbase)" "$debian_tar" debian:bookworm
  run sampan run -d --name walkthrough-debian -e MYSQL_ROOT_PASSWORD=jack123 debian:bookworm sleep 1000
  run sampan exec walkthrough-debian bash -c 'echo "bash $BASH_VERSION on Debian $(cat /etc/debian_version)"; echo "MYSQL_ROOT_PASSWORD=$MYSQL_ROOT_PASSWORD"'
  run sampan rm -fv walkthrough-debian
fi

chapter "4. a Dockerfile: the tutorial's example (test-docker-image), two instances, logs"
run sampan build -t test-docker-image examples/hello-docker
current=" $(sampan images -q --no-trunc test-docker-image) $(sampan images -q --no-trunc busybox:latest) "
for id in $old_images; do
  [[ $current == *" $id "* ]] || sampan rmi "$id" >/dev/null 2>&1 || true
done
run sampan run -d --name walkthrough-user01 -p "$port_app:8080" test-docker-image
run sampan run -d --name walkthrough-user02 -p "$port_app2:8080" test-docker-image
wait_tcp "http://127.0.0.1:$port_app/dockerfile"
wait_tcp "http://127.0.0.1:$port_app2/dockerfile"
run curl -fsS "http://127.0.0.1:$port_app/dockerfile"
run curl -fsS "http://127.0.0.1:$port_app2/dockerfile"
run sampan logs walkthrough-user01
run sampan image inspect -f '{{.Author}} {{json .Config.Labels}} {{json .Config.ExposedPorts}} {{json .Config.Entrypoint}}' test-docker-image

chapter "5. a registry (the Docker Hub / Harbor role): login, tag, push, rmi, pull, run"
reg=$work/registry
mkdir -p "$reg"
python3 -c 'import bcrypt,sys; print("itcrazy2016:" + bcrypt.hashpw(b"walkthrough", bcrypt.gensalt(4)).decode())' >"$reg/htpasswd"
printf '{"storage": "store", "auth": {"htpasswd": {"path": "htpasswd", "realm": "sampan-registry"}}}\n' >"$reg/config.json"
say "sampan registry serve --addr 127.0.0.1:$port_reg --config $reg/config.json &"
sampan registry serve --addr "127.0.0.1:$port_reg" --config "$reg/config.json" >"$reg/log" 2>&1 &
regpid=$!
for _ in $(seq 1 50); do curl -sS -o /dev/null "http://127.0.0.1:$port_reg/v2/" 2>/dev/null && break; sleep 0.1; done
export DOCKER_CONFIG=$work/docker-config   # the login goes to a config of its own, not ~/.docker
say "echo walkthrough | sampan login -u itcrazy2016 --password-stdin 127.0.0.1:$port_reg"
echo walkthrough | sampan login -u itcrazy2016 --password-stdin "127.0.0.1:$port_reg"
image="127.0.0.1:$port_reg/itcrazy2016/test-docker-image"
run sampan tag test-docker-image "$image"
run sampan push "$image"
run sampan rmi "$image"
run sampan pull "$image"
run sampan rm -fv walkthrough-user01   # its port goes to the pulled image's container
run sampan run -d --name walkthrough-pulled -p "$port_app:8080" "$image"
wait_tcp "http://127.0.0.1:$port_app/dockerfile"
run curl -fsS "http://127.0.0.1:$port_app/dockerfile"
run curl -fsS -u itcrazy2016:walkthrough "http://127.0.0.1:$port_reg/v2/_catalog"
echo
run sampan logout "127.0.0.1:$port_reg"
unset DOCKER_CONFIG

chapter "6. from a container to an image: commit"
run sampan run -d --name walkthrough-commit busybox sleep 1000
run sampan exec walkthrough-commit sh -c 'echo "made in a container" >/hello.txt'
run sampan diff walkthrough-commit
run sampan commit -m "tutorial commit" walkthrough-commit walkthrough-committed:v1
run sampan run --rm walkthrough-committed:v1 cat /hello.txt
run sampan history walkthrough-committed:v1

chapter "7. resource limits: --memory and --cpu-shares, docker stats"
run sampan run -d --memory 100M --name walkthrough-tomcat1 tomcat-like httpd -f -p 8080
run sampan run -d --cpu-shares 10 --name walkthrough-tomcat2 tomcat-like httpd -f -p 8080
run sampan stats --no-stream walkthrough-tomcat1 walkthrough-tomcat2
run sampan inspect -f '{{.Name}} Memory={{.HostConfig.Memory}} CpuShares={{.HostConfig.CpuShares}}' walkthrough-tomcat1 walkthrough-tomcat2
# the limits as the kernel has them: the container's cgroup (v1: cpu.shares, memory.limit_in_bytes; v2: cpu.weight, memory.max)
cgroup_file() {  # cgroup_file PID CONTROLLER FILE_V1 FILE_V2
  local line path
  line=$(grep -E "^[0-9]+:([^:]*,)?$2(,[^:]*)?:" "/proc/$1/cgroup" | head -1 || true)
  if [ -n "$line" ]; then
    path=${line#*:*:}
    for mnt in "/sys/fs/cgroup/$2" /sys/fs/cgroup/cpu,cpuacct /sys/fs/cgroup/cpuacct,cpu; do
      [ -e "$mnt$path/$3" ] && { echo "$mnt$path/$3"; return; }
    done
  fi
  path=$(grep '^0::' "/proc/$1/cgroup" | cut -d: -f3)
  echo "/sys/fs/cgroup$path/$4"
}
pid1=$(sampan inspect -f '{{.State.Pid}}' walkthrough-tomcat1)
pid2=$(sampan inspect -f '{{.State.Pid}}' walkthrough-tomcat2)
f=$(cgroup_file "$pid1" memory memory.limit_in_bytes memory.max)
say "cat $f"; cat "$f"
f=$(cgroup_file "$pid2" cpu cpu.shares cpu.weight)
say "cat $f"; cat "$f"

chapter "8. container commands: ps -a, logs, inspect, stop/start, rm -f"
run sampan ps -a --filter name=walkthrough-
run sampan logs --tail 2 walkthrough-user02
run sampan inspect -f '{{.Name}} {{.State.Status}} pid={{.State.Pid}} ip={{.NetworkSettings.IPAddress}}' walkthrough-tomcat
run sampan stop -t 1 walkthrough-tomcat
run sampan inspect -f '{{.State.Status}} exit={{.State.ExitCode}}' walkthrough-tomcat
run sampan start walkthrough-tomcat
run sampan inspect -f '{{.State.Status}}' walkthrough-tomcat
# the tutorial's "docker rm -f $(docker ps -a)", limited to this script's containers (-q: IDs only)
say 'sampan rm -fv $(sampan ps -aq --filter name=walkthrough-user0)'
# shellcheck disable=SC2046
sampan rm -fv $(sampan ps -aq --filter name=walkthrough-user0)

chapter "9. what a container is made of (底层技术): namespaces, cgroups, a union filesystem"
pid=$(sampan inspect -f '{{.State.Pid}}' walkthrough-tomcat)
run ls -l "/proc/$pid/ns"
run ls -l /proc/self/ns
own=""
for ns in cgroup ipc mnt net pid uts user; do
  [ "$(readlink "/proc/$pid/ns/$ns")" != "$(readlink /proc/self/ns/$ns)" ] && own="$own $ns"
done
echo "namespaces of its own:$own"
run cat "/proc/$pid/cgroup"
run sampan exec walkthrough-tomcat cat /proc/self/cgroup
run sampan inspect -f '{{json .GraphDriver}}' walkthrough-tomcat
if [ "$(sampan inspect -f '{{.GraphDriver.Name}}' walkthrough-tomcat)" = overlay ]; then
  merged=$(sampan inspect -f '{{.GraphDriver.Data.MergedDir}}' walkthrough-tomcat)
  say "grep $merged /proc/mounts"
  grep " $merged " /proc/mounts
else
  echo "(the storage driver is not overlay: no union mount to show)"
fi

chapter "10. networking: the bridge and its veths, network namespaces, user networks, names, -p"
br=$(sampan network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' bridge)
run ip addr show "$br"
run ip link show master "$br"
peer=$(sampan exec walkthrough-tomcat cat /sys/class/net/eth0/iflink)
veth=$(ip -o link | awk -F': ' -v i="$peer" '$1 == i {print $2}' | cut -d@ -f1)
echo "walkthrough-tomcat's eth0 is one end of a veth pair; the host end is $veth on $br"
sandbox=$(sampan inspect -f '{{.NetworkSettings.SandboxKey}}' walkthrough-tomcat)
run nsenter --net="$sandbox" ip addr   # the container's network namespace, seen from the host
run unshare --net ip link               # a new network namespace has only a loopback link
run sampan network ls
net_args=()
[ -n "${WALKTHROUGH_SUBNET:-}" ] && net_args+=(--subnet "$WALKTHROUGH_SUBNET")
[ -n "${WALKTHROUGH_NET_BRIDGE:-}" ] && net_args+=(-o "com.docker.network.bridge.name=$WALKTHROUGH_NET_BRIDGE")
run sampan network create "${net_args[@]}" walkthrough-net
run sampan network inspect -f '{{.Name}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}} gw {{.Gateway}}{{end}}' walkthrough-net
run sampan run -d --name walkthrough-t01 --network walkthrough-net tomcat-like httpd -f -p 8080 -h /etc
run sampan run -d --name walkthrough-t02 --network walkthrough-net tomcat-like httpd -f -p 8080 -h /etc
ip02=$(sampan inspect -f '{{(index .NetworkSettings.Networks "walkthrough-net").IPAddress}}' walkthrough-t02)
run sampan exec walkthrough-t01 ping -c 1 -W 2 "$ip02"
run sampan exec walkthrough-t01 ping -c 1 -W 2 walkthrough-t02
run sampan exec walkthrough-t01 wget -qO- http://walkthrough-t02:8080/hostname
# a container of the default bridge joins the user network: names resolve for it from then on
run sampan network connect walkthrough-net walkthrough-tomcat
run sampan exec walkthrough-tomcat ping -c 1 -W 2 walkthrough-t02
run sampan network inspect -f '{{range .Containers}}{{.Name}} {{.IPv4Address}}  {{end}}' walkthrough-net
echo
run sampan network disconnect walkthrough-net walkthrough-tomcat
ipweb=$(sampan inspect -f '{{.NetworkSettings.IPAddress}}' walkthrough-tomcat)
run sampan exec walkthrough-mysql wget -qO- "http://$ipweb:8080/hostname"   # the default bridge: by IP only
run sampan port walkthrough-tomcat
wait_tcp "http://127.0.0.1:$port_web/hostname"
run curl -fsS "http://127.0.0.1:$port_web/hostname"

chapter "11. clean up"
# shellcheck disable=SC2086
run sampan rm -fv $containers 2>/dev/null
run sampan network rm walkthrough-net
run sampan system df
echo
echo "walkthrough: done (the daemon keeps running; stop it with: kill \$(cat /run/sampan/sampand.pid))"
