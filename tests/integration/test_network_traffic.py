"""Traffic through sampan's rules, with a second namespace acting as another host.

Layout (all per test)::

    other host netns  --veth-->  host (this netns)  --bridge-->  containers (netns each)
    .194/30                      .193/30 (sp-h<tag>)            default bridge / user nets
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.engine.network_model import PortBinding
from sampan.engine.network_sandbox import AttachRequest
from sampan.engine.networks import NetworkService
from sampan.network import netlink, netns
from tests.integration.network_leaks import leak_check  # noqa: F401 - scoped to this test's names
from tests.integration.test_network_service import make_service, serve_tcp_in, stop, tcp_get

pytestmark = pytest.mark.root


@pytest.fixture
def svc(names, tmp_path: Path) -> Iterator[NetworkService]:  # type: ignore[no-untyped-def]
    yield from make_service(names, tmp_path)


@pytest.fixture
def other_host(names, tmp_path: Path) -> Iterator[tuple[Path, str, str]]:  # type: ignore[no-untyped-def]
    """(netns, host address on the link, other host's address)."""
    link = list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=30))[-1]
    host_ip, other_ip = (str(a) for a in link.hosts())
    path = netns.create(tmp_path / "otherhost")
    hv = f"sp-h{names.tag[:8]}"
    try:
        netlink.Batch().add("link", "add", hv, "type", "veth", "peer", "name", "eth0", "netns", str(path)) \
            .add("addr", "add", f"{host_ip}/30", "dev", hv).add("link", "set", hv, "up").run()
        netlink.Batch().add("link", "set", "lo", "up").add("addr", "add", f"{other_ip}/30", "dev", "eth0") \
            .add("link", "set", "eth0", "up").run(netns=path)
        yield path, host_ip, other_ip
    finally:
        netlink.delete_links([hv])
        netns.remove(path)


def refused_or_dropped(addr: str, port: int, netns_path: Path) -> bool:
    with netns.entered(netns_path):
        s = socket.socket()
    s.settimeout(1.0)
    with s:
        try:
            s.connect((addr, port))
        except OSError:
            return True
        return False


def test_published_ports_from_another_host_and_localhost_only(
        svc: NetworkService, other_host: tuple[Path, str, str], names) -> None:  # type: ignore[no-untyped-def]
    ohost, host_ip, _ = other_host
    public, local_only = names.free_port(), names.free_port()
    sb = svc.setup("a" * 64, name="web", requests=[AttachRequest("bridge")],
                   ports=[PortBinding(8080, "tcp", "", public), PortBinding(8081, "tcp", "127.0.0.1", local_only)])
    srv1 = serve_tcp_in(sb.netns, 8080, b"public")
    srv2 = serve_tcp_in(sb.netns, 8081, b"local")
    try:
        assert tcp_get("127.0.0.1", public) == b"public"
        assert tcp_get("127.0.0.1", local_only) == b"local"
        assert tcp_get(host_ip, public, netns_path=ohost) == b"public"  # DNAT from another host
        assert refused_or_dropped(host_ip, local_only, ohost)  # 127.0.0.1 only: not from outside
        # hairpin: a neighbour on the bridge and the container itself, through the host's address
        nb = svc.setup("9" * 64, name="neighbour", requests=[AttachRequest("bridge")])
        assert tcp_get(host_ip, public, netns_path=nb.netns) == b"public"
        assert tcp_get(host_ip, public, netns_path=sb.netns) == b"public"
    finally:
        stop(srv1)
        stop(srv2)
        svc.teardown("a" * 64)
        svc.teardown("9" * 64)


def test_egress_masquerade_internal_and_gateway(
        svc: NetworkService, other_host: tuple[Path, str, str], names) -> None:  # type: ignore[no-untyped-def]
    ohost, _, other_ip = other_host
    q = [str(n) for n in ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26)]
    internal = svc.create(f"{names.tag}-int", subnet=q[1], internal=True,
                          options={"com.docker.network.bridge.name": f"sp-i{names.tag[:8]}"})
    outside = serve_tcp_in(ohost, 9000, b"outside")
    gw = str(svc.subnets[svc.get("bridge").id].gateway)
    a = svc.setup("b" * 64, name="out", requests=[AttachRequest("bridge")])
    i = svc.setup("c" * 64, name="in", requests=[AttachRequest(internal.name)])
    host_srv = socket.socket()  # on the gateway address: the bridge exists once a container is on it
    host_srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    host_srv.bind((gw, 0))
    host_srv.listen(4)
    try:
        # default bridge: egress to another host (masqueraded: that host has no route back)
        assert tcp_get(other_ip, 9000, netns_path=a.netns) == b"outside"
        # a server listening on the host's gateway address is reachable from the container
        with netns.entered(a.netns):
            c = socket.socket()
        with c:
            c.settimeout(2)
            c.connect((gw, host_srv.getsockname()[1]))
        # --internal: no egress
        assert refused_or_dropped(other_ip, 9000, i.netns)
        routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
        assert internal.bridge in routes
    finally:
        host_srv.close()
        stop(outside)
        svc.teardown("b" * 64)
        svc.teardown("c" * 64)
        svc.remove(internal.name)


def test_userland_proxy_without_nftables(names, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from sampan.network import portmap

    gen = make_service(names, tmp_path)
    svc = next(gen)
    try:
        svc.nft = False  # as --nft=false
        svc.cfg = dataclasses.replace(svc.cfg, nft=False)
        tcp_port, udp_port = names.free_port(), names.free_port()
        sb = svc.setup("e" * 64, name="px", requests=[AttachRequest("bridge")],
                       ports=[PortBinding(8080, "tcp", "127.0.0.1", tcp_port), PortBinding(5353, "udp", "127.0.0.1", udp_port)])
        srv = serve_tcp_in(sb.netns, 8080, b"proxied")
        with netns.entered(sb.netns):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("0.0.0.0", 5353))
        try:
            assert tcp_get("127.0.0.1", tcp_port) == b"proxied"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.settimeout(2)
                c.sendto(b"ping", ("127.0.0.1", udp_port))
                data, peer = u.recvfrom(100)
                u.sendto(data.upper(), peer)
                assert c.recv(100) == b"PING"
            assert not portmap.table_exists(names.nft_table)
            assert svc.info()["FirewallBackend"] == "userland-proxy"
        finally:
            stop(srv)
            u.close()
            svc.teardown("e" * 64)
        with pytest.raises(OSError):
            tcp_get("127.0.0.1", tcp_port)
    finally:
        for _ in gen:
            pass
