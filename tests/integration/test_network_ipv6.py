"""IPv6 on user-defined bridge networks (``network create --ipv6 --subnet <v4> --subnet <v6>``),
end to end through the docker CLI: addresses and routes, ping6 and wget between containers by
address and by name (AAAA), isolation between two IPv6 networks, inspect, teardown, bad input.

Each test takes a ULA /64 derived from its tag (``fd5a:<tag>::/64``); nothing touches the host's
own IPv6 addresses or routes.  Skipped when the host has IPv6 disabled.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon
from tests.integration.network_leaks import leak_check  # noqa: F401 - scoped to this test's names
from tests.integration.test_network_containers import HTTPD, docker
from tests.integration.test_network_containers import netd as _netd

pytestmark = [
    pytest.mark.root, pytest.mark.timeout(180),
    pytest.mark.skipif(Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").read_text().strip() == "1"
                       if Path("/proc/sys/net/ipv6/conf/all/disable_ipv6").exists() else True,
                       reason="IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6 = 1)"),
]
netd = _netd
FORWARDING = Path("/proc/sys/net/ipv6/conf/all/forwarding")


@pytest.fixture(autouse=True)
def _host_forwarding() -> Iterator[None]:
    """sampan switches IPv6 forwarding on (as dockerd with --ipv6); put the host's setting back."""
    before = FORWARDING.read_text().strip()
    yield
    if FORWARDING.read_text().strip() != before:
        FORWARDING.write_text(before)


def v6(names, n: int = 0) -> str:  # type: ignore[no-untyped-def]
    """The test's own ULA /64s: fd5a:<tag>:<n>::/64."""
    # in canonical form (no leading zeros), as inspect and nft print it
    return str(ipaddress.IPv6Network(f"fd5a:{names.tag[:4]}:{names.tag[4:8]}:{n}::/64"))


def v4(names, n: int) -> str:  # type: ignore[no-untyped-def]
    return str(list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))[n])


def bridge(names, n: int) -> str:  # type: ignore[no-untyped-def]
    return f"sp-{n}{names.tag[:8]}"


def create(d: Daemon, names, n: int, name: str, *extra: str) -> None:  # type: ignore[no-untyped-def]
    docker(d, "network", "create", "--ipv6", "--subnet", v4(names, n), "--subnet", v6(names, n),
           "-o", f"com.docker.network.bridge.name={bridge(names, n)}", *extra, name)


def addresses6(link: str) -> list[str]:
    out = subprocess.run(["ip", "-j", "-6", "addr", "show", "dev", link], capture_output=True, text=True)
    if out.returncode != 0:
        return []
    return [a["local"] for link in json.loads(out.stdout) for a in link.get("addr_info", [])]


def test_v6_traffic_names_and_inspect(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    create(netd, names, 1, "v6net")
    net = json.loads(docker(netd, "network", "inspect", "v6net").stdout)[0]
    prefix = v6(names, 1).split("::")[0]
    assert net["EnableIPv6"] is True
    assert [c["Subnet"] for c in net["IPAM"]["Config"]] == [v4(names, 1), v6(names, 1)]
    assert net["IPAM"]["Config"][1]["Gateway"] == f"{prefix}::1"
    assert f"{prefix}::1" in addresses6(bridge(names, 1))  # the bridge holds the v6 gateway

    docker(netd, "run", "-d", "--network", "v6net", "--name", "srv", "busybox", "sh", "-c", HTTPD)
    docker(netd, "run", "-d", "--network", "v6net", "--ip6", f"{prefix}::99", "--name", "fixed", "busybox",
           "sleep", "60")
    info = json.loads(docker(netd, "inspect", "srv").stdout)[0]["NetworkSettings"]
    ep = info["Networks"]["v6net"]
    assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == (f"{prefix}::2", 64, f"{prefix}::1")
    assert info["GlobalIPv6Address"] == ""  # the top-level fields describe the default bridge only
    fixed = json.loads(docker(netd, "inspect", "fixed").stdout)[0]
    assert fixed["NetworkSettings"]["Networks"]["v6net"]["GlobalIPv6Address"] == f"{prefix}::99"
    assert fixed["NetworkSettings"]["Networks"]["v6net"]["IPAMConfig"] == {"IPv6Address": f"{prefix}::99"}
    members = json.loads(docker(netd, "network", "inspect", "v6net").stdout)[0]["Containers"]
    assert sorted(m["IPv6Address"] for m in members.values()) == [f"{prefix}::2/64", f"{prefix}::99/64"]

    out = docker(netd, "run", "--rm", "--network", "v6net", "busybox", "sh", "-c",
                 "ip -6 route show default; ping6 -c 1 -W 2 fixed >/dev/null && echo ping-ok;"
                 " nslookup -type=AAAA srv 127.0.0.11 | grep -c " + prefix + "::2;"
                 f" for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://[{prefix}::2]:8080/ && break; sleep 0.2; done;"
                 " wget -qO- http://srv:8080/").stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"default via {prefix}::1 dev eth0"), out
    assert lines[1:3] == ["ping-ok", "1"], out
    assert len(lines) == 5 and lines[3].startswith("hello from ") and lines[3] == lines[4], out

    hosts = docker(netd, "exec", "fixed", "cat", "/etc/hosts").stdout
    assert f"{prefix}::99\t" in hosts, hosts
    docker(netd, "rm", "-f", "srv", "fixed")
    docker(netd, "network", "rm", "v6net")
    assert not Path(f"/sys/class/net/{bridge(names, 1)}").exists()
    table = subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout
    assert prefix not in table


def test_isolation_between_v6_networks_and_masquerade_rules(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    create(netd, names, 1, "v6a")
    create(netd, names, 2, "v6b")
    docker(netd, "run", "-d", "--network", "v6b", "--name", "other", "busybox", "sleep", "60")
    target = json.loads(docker(netd, "inspect", "other").stdout)[0]["NetworkSettings"]["Networks"]["v6b"]["GlobalIPv6Address"]
    table = subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout
    for n in (1, 2):
        assert f'ip6 saddr {v6(names, n)} oifname != "{bridge(names, n)}" masquerade' in table, table
    out = docker(netd, "run", "--rm", "--network", "v6a", "busybox", "sh", "-c",
                 f"ping6 -c 1 -W 1 {target} >/dev/null 2>&1 && echo reached || echo isolated").stdout
    assert out.strip() == "isolated"
    a_prefix = v6(names, 1).split("::")[0]
    docker(netd, "network", "connect", "--ip6", f"{a_prefix}::77", "v6a", "other")  # on the same network: reachable
    nets = json.loads(docker(netd, "inspect", "other").stdout)[0]["NetworkSettings"]["Networks"]
    assert nets["v6a"]["GlobalIPv6Address"] == f"{a_prefix}::77" and nets["v6a"]["IPv6Gateway"] == f"{a_prefix}::1"
    out = docker(netd, "run", "--rm", "--network", "v6a", "busybox", "sh", "-c",
                 "ping6 -c 1 -W 2 other >/dev/null 2>&1 && echo reached || echo isolated").stdout
    assert out.strip() == "reached"
    docker(netd, "rm", "-f", "other")
    docker(netd, "network", "rm", "v6a", "v6b")


def test_bad_input_errors_and_leaves_nothing(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    before = json.loads(netd.request("GET", "/networks").body)
    bad = docker(netd, "network", "create", "--subnet", v6(names, 1), "nov6", check=False)
    assert bad.returncode != 0 and "IPv6 has not been enabled for this network, but an IPv6 subnet has been provided" in bad.stderr
    bad = docker(netd, "network", "create", "--ipv6", "nopool", check=False)
    assert bad.returncode != 0 and "could not find an available, non-overlapping IPv6 address pool" in bad.stderr
    create(netd, names, 1, "v6net")
    bad = docker(netd, "network", "create", "--ipv6", "--subnet", v4(names, 2), "--subnet", v6(names, 1).replace("::/64", "::/80"),
                 "-o", f"com.docker.network.bridge.name={bridge(names, 2)}", "clash", check=False)
    assert bad.returncode != 0 and "Pool overlaps with other one on this address space" in bad.stderr
    assert not Path(f"/sys/class/net/{bridge(names, 2)}").exists()
    bad = docker(netd, "run", "--rm", "--network", "v6net", "--ip6", "fd5a::1234", "busybox", "true", check=False)
    assert bad.returncode != 0 and "does not belong to the network's subnet" in bad.stderr
    members = json.loads(docker(netd, "network", "inspect", "v6net").stdout)[0]["Containers"]
    assert members == {}
    # an IPv4 --ip outside the subnet fails at start: a --rm container then goes (dockerd's), the CLI returns
    bad = docker(netd, "run", "--rm", "--network", "v6net", "--ip", "10.255.255.5", "busybox", "true", check=False)
    assert bad.returncode == 125 and "does not belong to the network's subnet" in bad.stderr
    assert json.loads(netd.request("GET", "/containers/json?all=1").body) == []
    docker(netd, "network", "rm", "v6net")
    assert addresses6(bridge(names, 1)) == []
    assert [n["Name"] for n in json.loads(netd.request("GET", "/networks").body)] == [n["Name"] for n in before]


def test_published_ports_over_v6_and_reconcile_after_sigkill(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    import signal

    from tests.integration.test_network_containers import fetch

    create(netd, names, 1, "v6net")
    prefix = v6(names, 1).split("::")[0]
    loop_port, any_port = names.free_port(), names.free_port()
    docker(netd, "run", "-d", "--network", "v6net", "-p", f"[::1]:{loop_port}:8080", "-p", f"{any_port}:8080",
           "--name", "web", "busybox", "sh", "-c", HTTPD)
    assert fetch(f"http://[::1]:{loop_port}/").startswith("hello from ")  # -p [::1]:P:80
    assert fetch(f"http://[::1]:{any_port}/").startswith("hello from ")  # -p P:80 binds both families
    assert fetch(f"http://[{prefix}::1]:{any_port}/").startswith("hello from ")  # a host v6 address: ip6 DNAT
    assert fetch(f"http://127.0.0.1:{any_port}/").startswith("hello from ")  # and still IPv4
    ports = json.loads(docker(netd, "inspect", "web").stdout)[0]["NetworkSettings"]["Ports"]["8080/tcp"]
    assert {"HostIp": "::1", "HostPort": str(loop_port)} in ports

    def table() -> str:
        return subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout

    before = table()
    assert f"tcp . {any_port} : {prefix}::2" in before, before
    netd.stop(signal.SIGKILL)
    netd.start()
    after = table()
    assert after == before and after.count(f"tcp . {any_port} :") == 4  # v4 and v6 maps, address and port
    assert fetch(f"http://[::1]:{loop_port}/").startswith("hello from ")  # the proxy is back
    assert fetch(f"http://[{prefix}::1]:{any_port}/").startswith("hello from ")
    docker(netd, "rm", "-f", "web")  # its elements go (in the background) and the [::1] proxy stops
    deadline = time.monotonic() + 5
    while f"tcp . {any_port}" in table() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"tcp . {any_port}" not in table() and f"{prefix}::2" not in table()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://[::1]:{loop_port}/", timeout=2)
    docker(netd, "network", "rm", "v6net")
    assert prefix not in table()
    # a container without IPv6 (default bridge): [::1] is proxied to its IPv4 address, as docker-proxy does;
    # another IPv6 host address cannot be DNAT'ed to IPv4: refused
    docker(netd, "run", "-d", "-p", f"[::1]:{loop_port}:8080", "--name", "v4web", "busybox", "sh", "-c", HTTPD)
    assert fetch(f"http://[::1]:{loop_port}/").startswith("hello from ")
    docker(netd, "rm", "-f", "v4web")
    nov6 = docker(netd, "run", "-d", "-p", f"[fd5a::1]:{loop_port}:8080", "--name", "nov6", "busybox", "true", check=False)
    assert nov6.returncode != 0 and "has no IPv6 subnet" in nov6.stderr, nov6.stderr
    docker(netd, "rm", "-f", "nov6")


def test_default_bridge_with_daemon_ipv6_flags(tmp_path: Path, names, busybox_rootfs_tar: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.daemon_fixture import cleanup, new_daemon
    from tests.integration.container_daemon import import_busybox

    first = next(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))
    base = ("--bridge", names.bridge, "--nft-table", names.nft_table, "--bip", f"{next(first.hosts())}/26")
    refused = new_daemon(tmp_path / "refused", *base, "--ipv6")
    try:
        with pytest.raises(RuntimeError, match="non-overlapping IPv6 address pool"):
            refused.start()
    finally:
        cleanup(refused)
    d = new_daemon(tmp_path / "v6", *base, "--ipv6", "--fixed-cidr-v6", v6(names, 9))
    prefix = v6(names, 9).split("::")[0]
    try:
        d.start()
        import_busybox(d, busybox_rootfs_tar)
        net = json.loads(docker(d, "network", "inspect", "bridge").stdout)[0]
        assert net["EnableIPv6"] is True and net["IPAM"]["Config"][1] == {"Subnet": v6(names, 9), "Gateway": f"{prefix}::1"}
        docker(d, "run", "-d", "--name", "one", "busybox", "sleep", "60")
        ns = json.loads(docker(d, "inspect", "one").stdout)[0]["NetworkSettings"]
        assert (ns["GlobalIPv6Address"], ns["GlobalIPv6PrefixLen"], ns["IPv6Gateway"]) == (f"{prefix}::2", 64, f"{prefix}::1")
        out = docker(d, "run", "--rm", "busybox", "sh", "-c", f"ping6 -c 1 -W 2 {prefix}::2 >/dev/null && echo ok").stdout
        assert out == "ok\n"
        docker(d, "rm", "-f", "one")
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                for c in json.loads(d.request("GET", "/containers/json?all=1").body or b"[]"):
                    d.request("DELETE", f"/containers/{c['Id']}?force=1")
        finally:
            cleanup(d)
