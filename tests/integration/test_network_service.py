"""The network service against the real kernel: namespaces stand in for containers.

Each test uses its own bridges, nft table and subnets (``names``), and removes everything.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan import errors
from sampan.engine.network_model import NetworkConfig, PortBinding
from sampan.engine.network_sandbox import AttachRequest
from sampan.engine.networks import NetworkService
from sampan.network import dns, netlink, netns
from sampan.storage.db import Database
from tests.integration.network_leaks import leak_check  # noqa: F401 - scoped to this test's names

pytestmark = pytest.mark.root


def quarters(subnet: str) -> list[str]:
    return [str(n) for n in ipaddress.IPv4Network(subnet).subnets(new_prefix=26)]


def wait_links_gone(links: set[str], timeout: float = 10.0) -> None:
    """veths of unpinned namespaces go when the kernel's netns cleanup runs (asynchronous)."""
    deadline = time.monotonic() + timeout
    while any(netlink.link_exists(n) for n in links) and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def svc(names, tmp_path: Path) -> Iterator[NetworkService]:  # type: ignore[no-untyped-def]
    yield from make_service(names, tmp_path)


def make_service(names, tmp_path: Path) -> Iterator[NetworkService]:  # type: ignore[no-untyped-def]
    """A network service on the test's own bridge, nft table and subnet; removes all it made."""
    q = quarters(names.subnet)
    gw = str(next(ipaddress.IPv4Network(q[0]).hosts()))
    cfg = NetworkConfig(exec_root=tmp_path / "run", bridge_name=names.bridge, bip=f"{gw}/26",
                        nft_table=names.nft_table, dns_upstreams=("127.0.0.1",), dns_upstream_port=1)
    db = Database.open(tmp_path / "sampan.db")
    s = NetworkService(cfg, db)
    before = set(netlink.links_with_prefix("veth"))
    try:
        yield s
    finally:
        for ep in s._endpoints():
            s.teardown(ep.container_id)
        s.prune()
        s.close()
        db.close()
        wait_links_gone(set(netlink.links_with_prefix("veth")) - before)


def in_ns(path: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    with netns.entered(path):
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=10)


def serve_tcp_in(path: Path, port: int, reply: bytes) -> socket.socket:
    with netns.entered(path):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(8)

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.sendall(reply)

    threading.Thread(target=loop, daemon=True).start()
    return srv


def stop(srv: socket.socket) -> None:
    """Wake the accepting thread (a blocked accept keeps the socket, and its netns, alive)."""
    try:
        srv.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    srv.close()


def tcp_get(addr: str, port: int, *, netns_path: Path | None = None) -> bytes:
    def connect() -> bytes:
        with socket.create_connection((addr, port), timeout=2) as c:
            return c.recv(100)

    if netns_path is None:
        return connect()
    with netns.entered(netns_path):
        s = socket.socket()
    s.settimeout(2)
    with s:
        s.connect((addr, port))
        return s.recv(100)


def test_default_bridge_published_port_from_host_and_localhost(svc: NetworkService, names) -> None:  # type: ignore[no-untyped-def]
    port = names.free_port()
    t0 = time.perf_counter()
    sb = svc.setup("c" * 64, name="web", requests=[AttachRequest("bridge")], ports=[PortBinding(8080, "tcp", "", port)])
    setup_ms = (time.perf_counter() - t0) * 1000
    ep = sb.endpoints[0]
    assert ep.ifname == "eth0" and ep.mac == "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ep.address).packed)
    srv = serve_tcp_in(sb.netns, 8080, b"hello")
    try:
        assert tcp_get("127.0.0.1", port) == b"hello"
        assert tcp_get(ep.address, 8080) == b"hello"  # the host reaches the container directly
        ruleset = subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout
        assert f"tcp . {port} : {ep.address}" in ruleset and f"tcp . {port} : 8080" in ruleset
    finally:
        stop(srv)
    t0 = time.perf_counter()
    svc.teardown("c" * 64)
    teardown_ms = (time.perf_counter() - t0) * 1000
    print(f"setup {setup_ms:.1f} ms, teardown {teardown_ms:.1f} ms")
    assert not sb.netns.exists()
    svc.writer.flush()
    # the rules for the port are gone, the table stays while the bridge does
    ruleset = subprocess.run(["nft", "list", "table", "inet", names.nft_table], capture_output=True, text=True).stdout
    assert f"tcp . {port}" not in ruleset


def test_user_networks_dns_isolation_internal(svc: NetworkService, names) -> None:  # type: ignore[no-untyped-def]
    q = quarters(names.subnet)
    a = svc.create(f"{names.tag}-a", subnet=q[1], options={"com.docker.network.bridge.name": f"sp-a{names.tag[:8]}"})
    b = svc.create(f"{names.tag}-b", subnet=q[2], internal=True,
                   options={"com.docker.network.bridge.name": f"sp-b{names.tag[:8]}"})
    with pytest.raises(errors.Conflict):
        svc.create(f"{names.tag}-c", subnet=q[1])
    one = svc.setup("1" * 64, name="one", requests=[AttachRequest(a.name, aliases=("db",))])
    two = svc.setup("2" * 64, name="two", requests=[AttachRequest(a.name, ipv4=str(ipaddress.IPv4Network(q[1])[10]))])
    three = svc.setup("3" * 64, name="three", requests=[AttachRequest(b.name)])
    assert two.endpoints[0].address == str(ipaddress.IPv4Network(q[1])[10])
    addr_one = one.endpoints[0].address
    srv = serve_tcp_in(one.netns, 7000, b"one")
    try:
        assert tcp_get(addr_one, 7000, netns_path=two.netns) == b"one"  # same network
        with pytest.raises(OSError):
            tcp_get(addr_one, 7000, netns_path=three.netns)  # other network: isolated
    finally:
        stop(srv)
    # embedded DNS, asked from inside "two": name, alias, short id; unknown names are forwarded
    for name in ("one", "db", "1" * 12):
        with netns.entered(two.netns):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            s.settimeout(3)
            s.sendto(dns.build_query(name), ("127.0.0.11", 53))
            assert dns.parse_answers(s.recv(512)) == [addr_one], name
    with netns.entered(three.netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.settimeout(5)
        s.sendto(dns.build_query("one"), ("127.0.0.11", 53))
        reply = s.recv(512)
        assert dns.parse_answers(reply) == [] and dns.rcode_of(reply) == 2  # not visible; forward fails
    files = svc.write_files("2" * 64, Path(svc.cfg.exec_root), hostname="two")
    assert "nameserver 127.0.0.11" in files["resolv.conf"].read_text()
    ins = svc.inspect(a.name)
    assert set(ins.containers) == {"1" * 64, "2" * 64}
    with pytest.raises(errors.Conflict):
        svc.remove(a.name)
    for cid in ("1" * 64, "2" * 64, "3" * 64):
        svc.teardown(cid)
    assert sorted(svc.prune()) == sorted([a.name, b.name])
    assert not netlink.link_exists(f"sp-a{names.tag[:8]}")


def test_reconcile_leaves_exactly_one_set_of_rules(svc: NetworkService, names, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = names.free_port()
    svc.setup("d" * 64, name="d", requests=[AttachRequest("bridge")], ports=[PortBinding(80, "tcp", "127.0.0.1", port)])
    text = lambda: subprocess.run(["nft", "list", "table", "inet", names.nft_table],  # noqa: E731
                                  capture_output=True, text=True).stdout
    before = text()
    # a second service on the same database: a restarted daemon (the first one "was killed")
    other = NetworkService(svc.cfg, svc.db)
    other.reconcile()
    other.reconcile()
    after = text()
    assert before == after
    assert after.count(f"127.0.0.1 . tcp . {port} :") == 2  # address and port maps, once each
    other.dns.close()
    svc.teardown("d" * 64)
