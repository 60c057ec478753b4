"""Coexistence with a running dockerd: its FORWARD drop policy (with br_netfilter) drops
traffic on sampan's bridges unless sampan's accept rules are in ``DOCKER-USER``.

This test starts dockerd itself (private data root, exec root, socket and pid file), checks
that two containers on a sampan network talk only while sampan's rules are there, and then
stops dockerd by pid and removes exactly what it added (DOCKER* chains, docker0, the FORWARD
policy, tables that did not exist before), as ``../shared/peers/stop.sh`` does.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.engine.network_sandbox import AttachRequest
from sampan.engine.networks import NetworkService
from sampan.network import dockercompat
from tests.integration.network_leaks import leak_check  # noqa: F401 - scoped to this test's names
from tests.integration.test_network_service import make_service, serve_tcp_in, stop, tcp_get

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
DOCKERD = "/usr/sbin/dockerd"


def run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout


def forward_policy() -> str:
    for line in run("iptables", "-S", "FORWARD").splitlines():
        if line.startswith("-P FORWARD"):
            return line.split()[2]
    return "ACCEPT"


def remove_docker_firewall(policy: str) -> None:
    for table in ("filter", "nat"):
        rules = run("iptables", "-t", table, "-S").splitlines()
        for line in rules:
            words = line.split()
            if len(words) > 1 and words[0] == "-A" and words[1] in ("INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING") \
                    and ("DOCKER" in line or "docker0" in line or "172.17.0.0/16" in line):
                subprocess.run(["iptables", "-t", table, "-D", *_unquote(words[1:])], capture_output=True)
        for line in run("iptables", "-t", table, "-S").splitlines():
            words = line.split()
            if len(words) > 1 and words[0] == "-A" and words[1].startswith("DOCKER"):
                subprocess.run(["iptables", "-t", table, "-D", *_unquote(words[1:])], capture_output=True)
        for line in run("iptables", "-t", table, "-S").splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "-N" and words[1].startswith("DOCKER"):
                subprocess.run(["iptables", "-t", table, "-X", words[1]], capture_output=True)
    subprocess.run(["iptables", "-P", "FORWARD", policy], capture_output=True)


def _unquote(words: list[str]) -> list[str]:
    return [w.strip('"') for w in words]


@pytest.fixture
def dockerd(tmp_path: Path) -> Iterator[None]:
    if not os.path.exists(DOCKERD):
        pytest.skip("dockerd is not installed")
    if run("pgrep", "-x", "dockerd").strip():
        pytest.skip("a dockerd is already running on this machine (its rules are not ours to change)")
    tables_before = set(run("nft", "list", "tables").splitlines())
    policy = forward_policy()
    had_docker0 = os.path.exists("/sys/class/net/docker0")
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    # dockerd sets the DROP policy when it is the one turning IPv4 forwarding on: give it that
    Path("/proc/sys/net/ipv4/ip_forward").write_text("0")
    root = Path(f"/tmp/sp-dockerd-{os.getpid()}")
    root.mkdir(exist_ok=True)
    log = open(tmp_path / "dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([DOCKERD, "--data-root", str(tmp_path / "docker"), "--exec-root", str(root / "exec"),
                             "-H", f"unix://{root}/docker.sock", "--pidfile", str(root / "docker.pid")],
                            stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["iptables", "-n", "-L", "DOCKER-USER"], capture_output=True).returncode != 0 \
                or forward_policy() != "DROP":
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start: {(tmp_path / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        assert forward_policy() == "DROP"
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        remove_docker_firewall(policy)
        Path("/proc/sys/net/ipv4/ip_forward").write_text(forwarding)
        if not had_docker0:
            subprocess.run(["ip", "link", "del", "docker0"], capture_output=True)
        for table in set(run("nft", "list", "tables").splitlines()) - tables_before:
            subprocess.run(["nft", "delete", *table.split()], capture_output=True)
        for line in reversed(run("findmnt", "-rn", "-o", "TARGET").splitlines()):
            if line.startswith((str(root), str(tmp_path))):
                subprocess.run(["umount", "-l", line], capture_output=True)
        subprocess.run(["rm", "-rf", str(root)], capture_output=True)


def test_docker_user_accept_rules(dockerd: None, names, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gen = make_service(names, tmp_path)
    svc: NetworkService = next(gen)
    try:
        q = [str(n) for n in ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26)]
        net = svc.create(f"{names.tag}-dk", subnet=q[1], options={"com.docker.network.bridge.name": f"sp-d{names.tag[:8]}"})
        one = svc.setup("1" * 64, name="one", requests=[AttachRequest(net.name)])
        two = svc.setup("2" * 64, name="two", requests=[AttachRequest(net.name)])
        rules = run("iptables", "-S", "DOCKER-USER")
        assert f'-i {net.bridge} -m comment --comment "sampan:{net.bridge}" -j ACCEPT' in rules
        assert svc.info()["DOCKER-USER"] == f"sampan:{net.bridge}"
        srv = serve_tcp_in(one.netns, 7000, b"hi")
        try:
            assert tcp_get(one.endpoints[0].address, 7000, netns_path=two.netns) == b"hi"
            svc.compat.remove(net.bridge)  # without sampan's rules Docker's policy drops the traffic
            with pytest.raises(OSError):
                tcp_get(one.endpoints[0].address, 7000, netns_path=two.netns)
            svc.compat.forget_cache()
            svc.compat.ensure(net.bridge)
            assert tcp_get(one.endpoints[0].address, 7000, netns_path=two.netns) == b"hi"
        finally:
            stop(srv)
        svc.teardown("1" * 64)
        svc.teardown("2" * 64)
        svc.remove(net.name)
        assert "sampan:" not in run("iptables", "-S", "DOCKER-USER")
    finally:
        for _ in gen:
            pass
    assert dockercompat.CHAIN == "DOCKER-USER"
