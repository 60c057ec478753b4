"""``run``'s networking flags become Docker's create body (CLI only, no daemon)."""

from __future__ import annotations

from typing import Any

from sampan.cli.createflags import create_body
from sampan.cli.flags import parse
from sampan.cli.run import RUN


def body_for(argv: list[str]) -> dict[str, Any]:
    opts, args = parse(RUN, argv, interspersed=False)
    return create_body(opts, args[0], args[1:], environ={}, detach=False)


def test_network_alias_ip_mac_and_dns_flags() -> None:
    body = body_for(["--network", "backend", "--network-alias", "db", "--network-alias", "pg", "--ip", "10.9.0.5",
                     "--mac-address", "02:42:0a:09:00:05", "--dns-search", "corp", "--dns-option", "ndots:2",
                     "--add-host", "gw:host-gateway", "-p", "127.0.0.1:8080:80/udp", "busybox"])
    assert body["HostConfig"]["NetworkMode"] == "backend"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"backend": {
        "Aliases": ["db", "pg"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}, "MacAddress": "02:42:0a:09:00:05"}}}
    assert body["HostConfig"]["DnsSearch"] == ["corp"] and body["HostConfig"]["DnsOptions"] == ["ndots:2"]
    assert body["HostConfig"]["ExtraHosts"] == ["gw:host-gateway"]
    assert body["HostConfig"]["PortBindings"] == {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}


def test_default_network_gets_endpoint_settings_only_when_asked() -> None:
    assert "NetworkingConfig" not in body_for(["busybox"])
    body = body_for(["--mac-address", "02:42:ac:11:00:09", "busybox"])
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"default": {"MacAddress": "02:42:ac:11:00:09"}}}
