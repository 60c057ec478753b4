"""The main job, scripts/walkthrough.sh (the tutorial chapter by chapter), against a test daemon.

The daemon is the test's own (tests/daemon_fixture.py) with a default bridge, nft table and
subnets named after the test (``names``); the script gets the daemon's socket (SAMPAN_HOST),
free loopback ports (WALKTHROUGH_*_PORT), its user network's subnet and bridge name, so it never
touches /run/sampan, sampan0 or fixed ports.  The Debian "bash" chapter runs when the Debian
rootfs is in the cache (importing it takes ~2 s) and is skipped otherwise.  The test checks the
exit status, one key line per chapter, and that the script removed what it made.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Names
from tests.daemon_fixture import REPO, Daemon, cleanup, new_daemon

pytestmark = [pytest.mark.root, pytest.mark.e2e, pytest.mark.slow]

CACHE = Path(os.environ.get("SAMPAN_TEST_CACHE", "/var/tmp/sampan-test-cache"))


def _links(tag: str) -> set[str]:
    return {n for n in os.listdir("/sys/class/net") if tag in n}


@pytest.fixture
def netd(tmp_path: Path, names: Names, busybox_rootfs_tar: Path) -> Iterator[Daemon]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    q = list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))
    d = new_daemon(tmp_path, "--bridge", names.bridge, "--nft-table", names.nft_table,
                   "--bip", f"{next(q[0].hosts())}/26", "--default-address-pool", f"base={q[1]},size=28")
    try:
        d.start()
        yield d
    finally:
        cleanup(d)
        deadline = time.monotonic() + 10  # veths of unpinned namespaces go asynchronously
        while _links(names.tag[:8]) and time.monotonic() < deadline:
            time.sleep(0.05)
        for link in _links(names.tag[:8]):  # the default bridge stays after the daemon, as docker0 does
            subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)


def _walkthrough(d: Daemon, names: Names, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    q = list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))
    ports = {f"WALKTHROUGH_{k}_PORT": str(names.free_port()) for k in ("WEB", "DB", "APP", "APP2", "REGISTRY")}
    assert len(set(ports.values())) == len(ports)
    env = {
        **os.environ, **ports,
        "SAMPAN_HOST": d.url,
        "PYTHONPATH": str(REPO),
        "SAMPAN_TEST_CACHE": str(CACHE),
        "WALKTHROUGH_SUBNET": str(q[2]),
        "WALKTHROUGH_NET_BRIDGE": f"sp-wt{names.tag[:8]}",
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
        "TMPDIR": "/tmp",
    }
    env.pop("DOCKER_HOST", None)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "walkthrough.sh")], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=150)
    return proc, ports


def test_walkthrough_runs_every_chapter(netd: Daemon, names: Names, tmp_path: Path) -> None:
    start = time.monotonic()
    proc, ports = _walkthrough(netd, names, tmp_path)
    took = time.monotonic() - start
    out = proc.stdout
    subnet = list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))[2]
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout (end)\n{out[-6000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    expected = [
        # 1. images
        "Loaded image: busybox:tutorial", "run by image ID",
        # 2. first containers
        "Hello from sampan! (the hello-world stand-in)", "mysql-like: root password is jack123",
        "MYSQL_ROOT_PASSWORD=jack123", "CapEff:", "privileged: mount works",
        # 4. Dockerfile
        "Successfully tagged test-docker-image:latest", "hello docker",
        # 5. registry
        "Login Succeeded", f"127.0.0.1:{ports['WALKTHROUGH_REGISTRY_PORT']}/itcrazy2016/test-docker-image:latest",
        '{"repositories": ["itcrazy2016/test-docker-image"]}',
        f"Removing login credentials for 127.0.0.1:{ports['WALKTHROUGH_REGISTRY_PORT']}",
        # 6. commit
        "A /hello.txt", "made in a container", "tutorial commit",
        # 7. limits
        " / 100MiB ", "/walkthrough-tomcat1 Memory=104857600 CpuShares=0", "/walkthrough-tomcat2 Memory=0 CpuShares=10",
        # 8. container commands
        "exited exit=137", "\nrunning\n",
        # 9. namespaces, cgroups, union filesystem
        "namespaces of its own: cgroup ipc mnt net pid uts", '"Name":"overlay"',
        # 10. networking
        f"master {names.bridge}", "one end of a veth pair; the host end is veth",
        f"walkthrough-net bridge {subnet} gw {next(subnet.hosts())}",
        "PING walkthrough-t02 (", "1 packets transmitted, 1 packets received",
        "$ sampan exec walkthrough-tomcat ping -c 1 -W 2 walkthrough-t02\x1b[0m\nPING walkthrough-t02 (",
        f"8080/tcp -> 0.0.0.0:{ports['WALKTHROUGH_WEB_PORT']}",
        "walkthrough: done",
    ]
    missing = [line for line in expected if line not in out]
    assert not missing, f"missing from the output: {missing}\n--- stdout (end)\n{out[-4000:]}"
    assert "\n104857600\n" in out  # the memory cgroup's limit (v1 memory.limit_in_bytes, v2 memory.max)
    assert out.count("hello docker") >= 3  # user01, user02 and the pulled image
    # the Debian chapter ran when the image is cached, else it says why it did not
    if (CACHE / "debian-bookworm-rootfs.tar").is_file():
        assert "bash 5." in out and "on Debian 12" in out
    else:
        assert "skipped: no Debian image in the cache" in out
    # it cleaned up after itself: its containers, its network and that network's bridge
    ps = subprocess.run(["sampan", "ps", "-a", "--format", "{{.Names}}"], env={**os.environ, "SAMPAN_HOST": netd.url},
                        capture_output=True, text=True, check=True)
    assert [n for n in ps.stdout.split() if n.startswith("walkthrough-")] == []
    nets = subprocess.run(["sampan", "network", "ls", "--format", "{{.Name}}"],
                          env={**os.environ, "SAMPAN_HOST": netd.url}, capture_output=True, text=True, check=True)
    assert "walkthrough-net" not in nets.stdout.split()
    assert f"sp-wt{names.tag[:8]}" not in _links(names.tag[:8])
    assert took < 90, f"the walkthrough took {took:.1f} s"
