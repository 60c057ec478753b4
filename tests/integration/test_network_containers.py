"""Containers on sampan's networks, end to end: sampand (with its own bridge, nft table and
subnets) driven by the real docker CLI, as issue 5's acceptance describes."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, cleanup, new_daemon
from tests.integration.container_daemon import import_busybox
from tests.integration.network_leaks import leak_check  # noqa: F401 - scoped to this test's names

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]
HTTPD = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"


@pytest.fixture
def netd(tmp_path: Path, names, busybox_rootfs_tar: Path) -> Iterator[Daemon]:  # type: ignore[no-untyped-def]
    first = next(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))
    d = new_daemon(tmp_path, "--bridge", names.bridge, "--nft-table", names.nft_table, "--bip", f"{next(first.hosts())}/26")
    try:
        d.start()
        import_busybox(d, busybox_rootfs_tar)
        yield d
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                for c in json.loads(d.request("GET", "/containers/json?all=1").body or b"[]"):
                    d.request("DELETE", f"/containers/{c['Id']}?force=1")
                d.request("POST", "/networks/prune")
        finally:
            cleanup(d)
            deadline = time.monotonic() + 10  # veths of unpinned namespaces go asynchronously
            while time.monotonic() < deadline and any(Path("/sys/class/net").glob("veth*")) and \
                    Path(f"/sys/class/net/{names.bridge}").exists():
                time.sleep(0.05)


def docker(d: Daemon, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=d.env(), timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {proc.returncode} {proc.stderr}")
    return proc


def fetch(url: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_published_port_reaches_httpd(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    port = names.free_port()
    docker(netd, "run", "-d", "-p", f"{port}:8080", "--name", "web", "busybox", "sh", "-c", HTTPD)
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello from ")
    info = json.loads(docker(netd, "inspect", "web").stdout)[0]
    ns = info["NetworkSettings"]
    assert ipaddress.IPv4Address(ns["IPAddress"]) in ipaddress.IPv4Network(names.subnet)
    assert ns["Networks"]["bridge"]["IPAddress"] == ns["IPAddress"]
    assert ns["Ports"]["8080/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    assert docker(netd, "port", "web").stdout.strip().startswith(f"8080/tcp -> 0.0.0.0:{port}")
    resolv = docker(netd, "run", "--rm", "busybox", "cat", "/etc/resolv.conf").stdout
    assert "127.0.0.11" not in resolv  # the default bridge gets the host's resolvers
    docker(netd, "rm", "-f", "web")
    ruleset = subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout
    deadline = time.monotonic() + 5
    while f"tcp . {port}" in ruleset and time.monotonic() < deadline:
        time.sleep(0.05)
        ruleset = subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout
    assert f"tcp . {port}" not in ruleset


def test_host_port_range_and_a_sidecar_on_the_network(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    port = names.free_port()
    for name in ("web1", "web2"):  # one container port on a host range: the first free port of it
        docker(netd, "run", "-d", "-p", f"127.0.0.1:{port}-{port + 1}:8080", "--name", name, "--hostname", name,
               "busybox", "sh", "-c", HTTPD)
    assert fetch(f"http://127.0.0.1:{port}/") == "hello from web1\n"
    assert fetch(f"http://127.0.0.1:{port + 1}/") == "hello from web2\n"
    third = docker(netd, "run", "-d", "-p", f"127.0.0.1:{port}-{port + 1}:8080", "busybox", "true", check=False)
    assert third.returncode != 0 and "all ports are allocated" in third.stderr
    side = docker(netd, "run", "--rm", "--network", "container:web2", "busybox", "sh", "-c",
                  "for i in 1 2 3 4 5; do wget -qO- http://127.0.0.1:8080/ && break; sleep 0.2; done; hostname")
    assert side.stdout == "hello from web2\nweb2\n", side.stdout + side.stderr


def test_network_connect_of_a_stopped_container(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    q = [str(n) for n in ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26)]
    docker(netd, "network", "create", "--subnet", q[1], "-o", f"com.docker.network.bridge.name=sp-c{names.tag[:8]}", "netc")
    docker(netd, "create", "--name", "later", "busybox", "sh", "-c", "ip -o -4 addr show; sleep 0.2")
    docker(netd, "network", "connect", "--alias", "lat", "netc", "later")
    nets = json.loads(docker(netd, "inspect", "later").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "netc"} and nets["netc"]["Aliases"] == ["lat"] and not nets["netc"]["IPAddress"]
    again = docker(netd, "network", "connect", "netc", "later", check=False)
    assert again.returncode != 0 and "already exists in network netc" in again.stderr
    docker(netd, "start", "-a", "later")  # attached to both at start
    out = docker(netd, "logs", "later").stdout
    assert "eth0" in out and "eth1" in out and q[1].rsplit(".", 1)[0] in out, out
    docker(netd, "network", "disconnect", "netc", "later")  # stopped again: forgets it
    assert set(json.loads(docker(netd, "inspect", "later").stdout)[0]["NetworkSettings"]["Networks"]) == {"bridge"}
    docker(netd, "rm", "later")
    docker(netd, "network", "rm", "netc")


def test_legacy_links_on_the_default_bridge(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    docker(netd, "run", "-d", "--name", "db", "-e", "SECRET_MODE=on", "--expose", "5432", "--expose", "53/udp",
           "busybox", "sh", "-c", HTTPD)
    ip = json.loads(docker(netd, "inspect", "db").stdout)[0]["NetworkSettings"]["IPAddress"]
    out = docker(netd, "run", "--name", "app", "--link", "db:database", "busybox", "sh", "-c",
                 "env | grep ^DATABASE_ | sort; grep -w database /etc/hosts;"
                 " for i in 1 2 3 4 5; do wget -qO- http://database:8080/ && break; sleep 0.2; done").stdout
    assert out.splitlines() == [
        "DATABASE_ENV_SECRET_MODE=on",
        "DATABASE_NAME=/app/database",
        f"DATABASE_PORT=udp://{ip}:53",
        f"DATABASE_PORT_53_UDP=udp://{ip}:53", f"DATABASE_PORT_53_UDP_ADDR={ip}",
        "DATABASE_PORT_53_UDP_PORT=53", "DATABASE_PORT_53_UDP_PROTO=udp",
        f"DATABASE_PORT_5432_TCP=tcp://{ip}:5432", f"DATABASE_PORT_5432_TCP_ADDR={ip}",
        "DATABASE_PORT_5432_TCP_PORT=5432", "DATABASE_PORT_5432_TCP_PROTO=tcp",
        f"{ip}\tdatabase",
        "hello from " + json.loads(docker(netd, "inspect", "db").stdout)[0]["Config"]["Hostname"],
    ], out
    assert json.loads(docker(netd, "inspect", "app").stdout)[0]["HostConfig"]["Links"] == ["/db:/app/database"]
    bad = docker(netd, "run", "--link", "nosuch:x", "busybox", "true", check=False)
    assert bad.returncode != 0 and "No such container: nosuch" in bad.stderr
    docker(netd, "stop", "-t", "1", "db")
    stopped = docker(netd, "start", "app", check=False)
    assert stopped.returncode != 0 and "Cannot link to a non running container: /db AS /app/database" in stopped.stderr


def test_user_network_names_and_isolation(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    q = [str(n) for n in ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26)]
    docker(netd, "network", "create", "--subnet", q[1], "-o", f"com.docker.network.bridge.name=sp-a{names.tag[:8]}", "neta")
    docker(netd, "network", "create", "--subnet", q[2], "-o", f"com.docker.network.bridge.name=sp-b{names.tag[:8]}", "netb")
    docker(netd, "run", "-d", "--network", "neta", "--network-alias", "www", "--name", "aa", "busybox", "sh", "-c", HTTPD)
    ok = docker(netd, "run", "--rm", "--network", "neta", "busybox", "sh", "-c",
                "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://aa:8080/ && break; sleep 0.2; done; "
                "wget -qO- http://www:8080/ && ping -c1 -W2 aa >/dev/null && echo PING-OK")
    assert ok.stdout.count("hello from ") == 2 and "PING-OK" in ok.stdout, ok.stdout + ok.stderr
    a_ip = json.loads(docker(netd, "inspect", "aa").stdout)[0]["NetworkSettings"]["Networks"]["neta"]["IPAddress"]
    other = docker(netd, "run", "--rm", "--network", "netb", "busybox", "sh", "-c",
                   f"echo GET | nc -w 2 {a_ip} 8080 | grep -q HTTP && echo REACHED || echo BLOCKED; nslookup aa 127.0.0.11 >/dev/null 2>&1 || echo NONAME",
                   check=False)
    assert "BLOCKED" in other.stdout and "REACHED" not in other.stdout and "NONAME" in other.stdout, other.stdout + other.stderr
    docker(netd, "network", "connect", "--alias", "web-b", "netb", "aa")  # a running container joins netb
    joined = docker(netd, "run", "--rm", "--network", "netb", "busybox", "wget", "-qO-", "http://web-b:8080/")
    nets = json.loads(docker(netd, "inspect", "aa").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"neta", "netb"} and nets["netb"]["Aliases"] == ["web-b"]
    assert joined.stdout.startswith("hello from ")
    docker(netd, "network", "disconnect", "netb", "aa")
    gone = docker(netd, "run", "--rm", "--network", "netb", "busybox", "sh", "-c",
                  "nslookup web-b 127.0.0.11 >/dev/null 2>&1 || echo GONE", check=False)
    assert "GONE" in gone.stdout
    assert set(json.loads(docker(netd, "inspect", "aa").stdout)[0]["NetworkSettings"]["Networks"]) == {"neta"}
    docker(netd, "rm", "-f", "aa")
    assert "neta" in docker(netd, "network", "prune", "-f").stdout
    assert not Path(f"/sys/class/net/sp-a{names.tag[:8]}").exists()


def test_sigkilled_daemon_restarts_with_exactly_one_set_of_rules(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    import signal

    port = names.free_port()
    docker(netd, "network", "create", "--subnet", str(list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))[1]),
           "-o", f"com.docker.network.bridge.name=sp-k{names.tag[:8]}", "kept")
    docker(netd, "run", "-d", "-p", f"127.0.0.1:{port}:8080", "--name", "web", "busybox", "sh", "-c", HTTPD)
    docker(netd, "run", "-d", "--network", "kept", "--name", "named", "busybox", "sleep", "600")
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello from ")

    def table() -> str:
        return subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout

    before = table()
    netd.stop(signal.SIGKILL)
    netd.start()
    after = table()
    assert after == before and after.count(f"127.0.0.1 . tcp . {port} :") == 2
    assert fetch(f"http://127.0.0.1:{port}/").startswith("hello from ")  # live restore kept it serving
    dns = docker(netd, "run", "--rm", "--network", "kept", "busybox", "nslookup", "named", "127.0.0.11")
    assert "Address" in dns.stdout and "NXDOMAIN" not in dns.stdout
    docker(netd, "rm", "-f", "web", "named")
    docker(netd, "network", "rm", "kept")
    netd.stop()
    assert subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True).returncode != 0
    assert not Path(f"/sys/class/net/{names.bridge}").exists()
