"""The network endpoints through a real sampand and the real docker CLI."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, cleanup, start_daemon
from tests.integration.network_leaks import leak_check  # noqa: F401 - scoped to this test's names

pytestmark = pytest.mark.root


@pytest.fixture
def netd(tmp_path: Path, names) -> Iterator[Daemon]:  # type: ignore[no-untyped-def]
    bip = ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26)
    first = next(bip)
    d = start_daemon(tmp_path, "--bridge", names.bridge, "--nft-table", names.nft_table,
                     "--bip", f"{next(first.hosts())}/26")
    try:
        yield d
    finally:
        cleanup(d)


def docker(d: Daemon, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=d.env(), timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {proc.stderr}")
    return proc


def test_network_lifecycle_with_docker_cli(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    quarters = [str(n) for n in ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26)]
    info = netd.request("GET", "/info").json()
    assert info["FirewallBackend"] == {"Driver": "nftables", "Info": [["Table", f"inet {names.nft_table}"],
                                                                      ["DOCKER-USER", "not used"]]}
    ls = docker(netd, "network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert {"bridge bridge", "host host", "none null"} <= set(ls)
    bridge = json.loads(docker(netd, "network", "inspect", "bridge").stdout)[0]
    assert bridge["IPAM"]["Config"][0]["Subnet"] == quarters[0]
    assert bridge["Options"]["com.docker.network.bridge.name"] == names.bridge
    brname = f"sp-u{names.tag[:8]}"
    nid = docker(netd, "network", "create", "--subnet", quarters[1], "--gateway", str(ipaddress.IPv4Network(quarters[1])[62]),
                 "--ip-range", quarters[1].replace("/26", "/27"), "--label", "team=a", "--internal",
                 "-o", f"com.docker.network.bridge.name={brname}", f"{names.tag}-net").stdout.strip()
    assert len(nid) == 64
    info = json.loads(docker(netd, "network", "inspect", f"{names.tag}-net").stdout)[0]
    assert info["Internal"] is True and info["Labels"] == {"team": "a"}
    assert info["IPAM"]["Config"][0] == {"Subnet": quarters[1], "Gateway": str(ipaddress.IPv4Network(quarters[1])[62]),
                                         "IPRange": quarters[1].replace("/26", "/27")}
    addrs = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", brname], capture_output=True, text=True).stdout
    assert str(ipaddress.IPv4Network(quarters[1])[62]) in addrs
    dup = docker(netd, "network", "create", f"{names.tag}-net", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    overlap = docker(netd, "network", "create", "--subnet", quarters[1], f"{names.tag}-x", check=False)
    assert overlap.returncode != 0 and "overlaps" in overlap.stderr
    bad = docker(netd, "network", "create", "--subnet", "300.1.2.0/24", f"{names.tag}-y", check=False)
    assert bad.returncode != 0 and "invalid subnet" in bad.stderr
    assert docker(netd, "network", "rm", "bridge", check=False).returncode != 0
    assert docker(netd, "network", "ls", "-q", "--filter", "label=team=a").stdout.strip() == nid[:12]
    docker(netd, "network", "create", "--subnet", quarters[2], "-o", f"com.docker.network.bridge.name=sp-v{names.tag[:8]}",
           f"{names.tag}-other")
    pruned = docker(netd, "network", "prune", "-f").stdout
    assert f"{names.tag}-net" in pruned and f"{names.tag}-other" in pruned
    assert not Path(f"/sys/class/net/{brname}").exists()
    gone = docker(netd, "network", "inspect", f"{names.tag}-net", check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr


def test_sampan_network_cli(netd: Daemon, names) -> None:  # type: ignore[no-untyped-def]
    import os
    import sys

    env = {**os.environ, "DOCKER_HOST": netd.url, "SAMPAN_HOST": netd.url}

    def sampan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sampan.cli", "-H", netd.url, *args], capture_output=True,
                              text=True, env=env, timeout=60)

    quarter = str(list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))[3])
    made = sampan("network", "create", "--subnet", quarter, "-o", f"com.docker.network.bridge.name=sp-w{names.tag[:8]}",
                  f"{names.tag}-cli")
    assert made.returncode == 0, made.stderr
    table = sampan("network", "ls").stdout.splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert any(line.split()[1:] == [f"{names.tag}-cli", "bridge", "local"] for line in table[1:])
    subnet = sampan("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", f"{names.tag}-cli")
    assert subnet.stdout.strip() == quarter
    missing = sampan("network", "inspect", "nope-" + names.tag)
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert sampan("network", "rm", f"{names.tag}-cli").stdout.strip() == f"{names.tag}-cli"
