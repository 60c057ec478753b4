"""IPv6 pure logic: the IPv6 subnet allocator, AAAA answers of the embedded DNS, the ip6 rules
and the endpoint's ``ip`` commands and sysctls (the kernel side is in
tests/integration/test_network_ipv6.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampan import errors
from sampan.network import bridge, dns, ipam, portmap


def test_subnet6_gateway_sequential_allocation_and_requests() -> None:
    sub = ipam.Subnet6.make("fd12:3456:789a::/64")
    assert str(sub.gateway) == "fd12:3456:789a::1"
    assert [str(sub.allocate()) for _ in range(2)] == ["fd12:3456:789a::2", "fd12:3456:789a::3"]
    assert str(sub.allocate("fd12:3456:789a::99")) == "fd12:3456:789a::99"
    with pytest.raises(errors.Conflict, match="Address already in use"):
        sub.allocate("fd12:3456:789a::99")
    with pytest.raises(errors.InvalidArgument, match="does not belong to the network's subnet"):
        sub.allocate("fd00::5")
    sub.release("fd12:3456:789a::2")
    assert str(sub.allocate()) == "fd12:3456:789a::2"
    assert str(ipam.Subnet6.make("fd00:1::/64", gateway="fd00:1::fe").gateway) == "fd00:1::fe"
    with pytest.raises(errors.InvalidArgument, match="no matching subnet for gateway"):
        ipam.Subnet6.make("fd00:1::/64", gateway="fd00:2::1")
    with pytest.raises(errors.InvalidArgument, match="not an IPv6 CIDR"):
        ipam.Subnet6.make("10.0.0.0/24")


def test_small_subnet6_runs_out() -> None:
    sub = ipam.Subnet6.make("fd00:9::/126")  # ::0 network, ::1 gateway: ::2 and ::3 are left
    assert [str(sub.allocate()), str(sub.allocate())] == ["fd00:9::2", "fd00:9::3"]
    with pytest.raises(errors.Unavailable, match="no available IPv6 addresses"):
        sub.allocate()


def test_overlap_is_checked_per_family() -> None:
    taken: list[tuple[str, ipam.Net | ipam.Net6]] = [("a", ipam.Net("10.0.0.0/24")), ("b", ipam.Net6("fd00::/64"))]
    ipam.check_no_overlap(ipam.Net6("fd01::/64"), taken)
    with pytest.raises(errors.Conflict, match="Pool overlaps with other one on this address space"):
        ipam.check_no_overlap(ipam.Net6("fd00::/80"), taken)


def test_aaaa_answers_carry_only_ipv6_addresses() -> None:
    found = ["10.0.0.2", "fd00::2"]
    a = dns.answer(dns.build_query("web", dns.TYPE_A), found)
    aaaa = dns.answer(dns.build_query("web", dns.TYPE_AAAA), found)
    assert dns.parse_answers(a) == ["10.0.0.2"]
    assert dns.parse_answers(aaaa) == ["fd00::2"]
    assert dns.parse_answers(dns.answer(dns.build_query("web", dns.TYPE_AAAA), ["10.0.0.2"])) == []


def test_ip6_masquerade_and_hairpin_rules_only_for_ipv6_networks() -> None:
    v4 = portmap.BridgeRules("br-a", "10.1.0.0/24")
    v6 = portmap.BridgeRules("br-b", "10.2.0.0/24", subnet6="fd00:b::/64")
    plain = str(portmap.ruleset("t", [v4], []))
    assert "ip6" not in plain
    doc = portmap.ruleset("t", [v4, v6], [])
    rules = [c["add"]["rule"] for c in doc["nftables"] if "add" in c and "rule" in c["add"]
             and c["add"]["rule"]["chain"] == "postrouting"]
    six = [r for r in rules if any(e.get("match", {}).get("left", {}).get("payload", {}).get("protocol") == "ip6"
                                   for e in r["expr"])]
    assert len(six) == 2  # egress masquerade and hairpin
    assert six[0]["expr"][0]["match"]["right"] == {"prefix": {"addr": "fd00:b::", "len": 64}}
    internal = portmap.BridgeRules("br-c", "10.3.0.0/24", internal=True, subnet6="fd00:c::/64")
    assert "fd00:c::" in str(portmap.ruleset("t", [internal], []))  # hairpin
    assert "'!='" not in str([c for c in portmap.ruleset("t", [internal], [])["nftables"]
                              if "fd00:c::" in str(c)])  # but no egress masquerade


def test_published_ports_in_both_families() -> None:
    both = portmap.PortMapping("tcp", "", 8080, "10.2.0.2", 80, "br-b", "fd00:b::2")
    loop6 = portmap.PortMapping("tcp", "::1", 8081, "10.2.0.2", 80, "br-b", "fd00:b::2")
    v4only = portmap.PortMapping("tcp", "127.0.0.1", 8082, "10.2.0.2", 80, "br-b", "fd00:b::2")
    on6 = portmap.PortMapping("tcp", "fd00:1::5", 8083, "10.2.0.2", 80, "br-b", "fd00:b::2")
    doc = portmap.elements("t", [both, loop6, v4only, on6], add=True)
    names = [(c["add"]["element"]["name"], str(c["add"]["element"]["elem"])) for c in doc["nftables"]]
    assert [n for n, _ in names] == ["publish_any_ip", "publish_any_port", "publish_any6_ip", "publish_any6_port",
                                     "publish_addr_ip", "publish_addr_port", "publish_addr6_ip", "publish_addr6_port"]
    assert "fd00:b::2" in names[2][1] and "fd00:1::5" in names[6][1]
    assert [(p.host_ip, p.host_port, p.container_ip) for p in portmap.loopback6([both, loop6, v4only, on6])] == \
        [("::1", 8080, "fd00:b::2"), ("::1", 8081, "fd00:b::2")]
    plain = portmap.PortMapping("tcp", "", 8080, "10.2.0.2", 80, "br-b")
    assert portmap.loopback6([plain]) == []
    v4loop = portmap.PortMapping("tcp", "::1", 8084, "10.2.0.2", 80, "br-b")  # docker-proxy's [::1] -> IPv4
    assert [(p.host_ip, p.container_ip) for p in portmap.loopback6([v4loop])] == [("::1", "10.2.0.2")]
    assert portmap.elements("t", [v4loop], add=True) == {"nftables": []}
    assert "6" not in str([c["add"]["element"]["name"] for c in portmap.elements("t", [plain], add=True)["nftables"]])


def test_endpoint_commands_and_sysctls() -> None:
    ep = bridge.Endpoint("e1", "br0", Path("/run/x"), "eth0", "10.0.0.2", 24, "10.0.0.1", "02:42:0a:00:00:02",
                         address6="fd00::2", prefixlen6=64, gateway6="fd00::1")
    cmds = ep.inside_batch().commands
    assert "addr add fd00::2/64 dev eth0 nodad" in cmds
    assert "route replace default via fd00::1 dev eth0" in cmds
    assert ep.ipv6_sysctls() == {"net.ipv6.conf.eth0.disable_ipv6": "0", "net.ipv6.conf.eth0.accept_dad": "0"}
    plain = bridge.Endpoint("e2", "br0", Path("/run/x"), "eth1", "10.0.0.3", 24, "10.0.0.1", "02:42:0a:00:00:03",
                            default_route=False)
    assert not any("fd00" in c or "nodad" in c for c in plain.inside_batch().commands)
    assert plain.ipv6_sysctls() == {}


def test_cli_pairs_gateways_and_ranges_with_their_subnets() -> None:
    from sampan.cli.networks import _configs

    opts = {"subnet": ["10.1.0.0/24", "fd00::/64"], "gateway": ["fd00::fe"], "ip_range": ["10.1.0.128/25"]}
    assert _configs(opts) == [{"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25"},  # type: ignore[arg-type]
                              {"Subnet": "fd00::/64", "Gateway": "fd00::fe"}]
    with pytest.raises(errors.InvalidArgument, match=r"no matching subnet for gateway 10\.2\.0\.1"):
        _configs({"subnet": ["10.1.0.0/24"], "gateway": ["10.2.0.1"], "ip_range": []})  # type: ignore[arg-type]


def test_schema_migration_keeps_old_endpoints(tmp_path: Path) -> None:
    from sampan.engine.network_model import MIGRATIONS, endpoint_from_row
    from sampan.storage.db import Database

    db = Database.open(tmp_path / "s.db")
    db.migrate("networks", MIGRATIONS[:2])  # a database of the IPv4-only schema
    db.execute("INSERT INTO networks (id, name, driver, created, labels, options, ipam, bridge)"
               " VALUES ('n', 'x', 'bridge', 't', '{}', '{}', '[]', 'b')")
    db.execute("INSERT INTO endpoints (id, network_id, container_id, container_name, address, prefixlen, gateway, mac,"
               " aliases, ifname, netns, ports) VALUES ('e', 'n', 'c', 'c', '10.0.0.2', 24, '10.0.0.1', 'm', '[]',"
               " 'eth0', '/x', '[]')")
    assert db.migrate("networks", MIGRATIONS) == 3
    ep = endpoint_from_row(db.query("SELECT * FROM endpoints")[0])
    assert (ep.address, ep.address6, ep.prefixlen6, ep.gateway6) == ("10.0.0.2", "", 0, "")
