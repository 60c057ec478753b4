"""The nftables document sampan applies (pure data: no nft run here)."""

from __future__ import annotations

import json

import pytest

from sampan import errors
from sampan.network import portmap
from sampan.network.portmap import BridgeRules, PortMapping


def rules(doc: dict[str, object], chain: str) -> list[str]:
    out = []
    for cmd in doc["nftables"]:  # type: ignore[attr-defined]
        rule = cmd.get("add", {}).get("rule")
        if rule and rule["chain"] == chain:
            out.append(json.dumps(rule["expr"]))
    return out


def maps(doc: dict[str, object]) -> dict[str, list[object]]:
    out = {}
    for cmd in doc["nftables"]:  # type: ignore[attr-defined]
        m = cmd.get("add", {}).get("map")
        if m:
            out[m["name"]] = m.get("elem", [])
    return out


def test_document_recreates_only_its_own_table() -> None:
    doc = portmap.ruleset("sampan_x", [BridgeRules("br0", "10.0.0.0/24")], [])
    cmds = doc["nftables"][1:]
    assert cmds[:3] == [{"add": {"table": {"family": "inet", "name": "sampan_x"}}},
                        {"delete": {"table": {"family": "inet", "name": "sampan_x"}}},
                        {"add": {"table": {"family": "inet", "name": "sampan_x"}}}]
    for cmd in cmds:
        body = next(iter(cmd.values()))
        obj = next(iter(body.values()))
        assert obj.get("table", obj.get("name")) == "sampan_x"
    flushed = portmap.ruleset("sampan_x", [BridgeRules("br0", "10.0.0.0/24")], [], recreate=False)
    assert {"delete": {"table": {"family": "inet", "name": "sampan_x"}}} not in flushed["nftables"]
    assert sum("flush" in c for c in flushed["nftables"]) == len(portmap.CHAINS)


def test_bad_table_names_are_refused() -> None:
    for bad in ("", "1abc", "a b", "x;flush ruleset", "a" * 40):
        with pytest.raises(errors.InvalidArgument):
            portmap.ruleset(bad, [], [])


def test_masquerade_localhost_and_hairpin_per_bridge() -> None:
    doc = portmap.ruleset("t", [BridgeRules("brA", "10.1.0.0/24"), BridgeRules("brB", "10.2.0.0/24", masquerade=False)], [])
    post = rules(doc, "postrouting")
    assert any('"10.1.0.0", "len": 24' in r and '"!="' in r and "masquerade" in r for r in post)
    assert not any('"10.2.0.0"' in r and '"!="' in r for r in post)  # enable_ip_masquerade=false: no egress NAT
    assert sum('"127.0.0.0", "len": 8' in r for r in post) == 2
    assert sum('"dnat"' in r and '"10.1.0.0"' in r for r in post) == 1  # ct status dnat from brA's subnet


def test_isolation_internal_and_icc() -> None:
    doc = portmap.ruleset("t", [BridgeRules("brA", "10.1.0.0/24"), BridgeRules("brB", "10.2.0.0/24", internal=True),
                                BridgeRules("brC", "10.3.0.0/24", icc=False)], [])
    fwd = rules(doc, "forward")
    assert any('"iifname"' in r and '"brA"' in r and '{"set": ["brB", "brC"]}' in r and "drop" in r for r in fwd)
    assert sum('"brB"' in r and '"!="' in r for r in fwd) == 2  # nothing in or out of the internal bridge
    assert any(r.count('"brC"') == 2 and "drop" in r and '"!="' not in r for r in fwd)  # icc=false
    post = rules(doc, "postrouting")
    assert not any('"10.2.0.0"' in r and '"!="' in r for r in post)  # no egress masquerade for internal


def test_published_ports_are_map_elements() -> None:
    ports = [PortMapping("tcp", "", 8080, "10.1.0.2", 80, "brA"), PortMapping("udp", "127.0.0.1", 5353, "10.1.0.3", 53, "brA")]
    doc = portmap.ruleset("t", [BridgeRules("brA", "10.1.0.0/24")], ports)
    m = maps(doc)
    assert m["publish_any_ip"] == [[{"concat": ["tcp", 8080]}, "10.1.0.2"]]
    assert m["publish_any_port"] == [[{"concat": ["tcp", 8080]}, 80]]
    assert m["publish_addr_ip"] == [[{"concat": ["127.0.0.1", "udp", 5353]}, "10.1.0.3"]]
    assert len(rules(doc, "publish")) == 2
    assert all("fib" in r and "jump" in r for r in rules(doc, "prerouting") + rules(doc, "output"))
    add = portmap.elements("t", ports[:1], add=True)["nftables"]
    assert [c["add"]["element"]["name"] for c in add] == ["publish_any_ip", "publish_any_port"]
    delete = portmap.elements("t", ports[1:], add=False)["nftables"]
    assert delete[0] == {"delete": {"element": {"family": "inet", "table": "t", "name": "publish_addr_ip",
                                                "elem": [{"concat": ["127.0.0.1", "udp", 5353]}]}}}


def test_rule_writer_keeps_order_and_reports_errors() -> None:
    seen: list[int] = []
    w = portmap.RuleWriter()
    w.submit(lambda: seen.append(1))
    w.run(lambda: seen.append(2))
    assert seen == [1, 2]

    def boom() -> None:
        raise errors.Internal("nope")

    with pytest.raises(errors.Internal):
        w.run(boom)
    w.submit(boom)
    w.flush()
    assert w.failures == ["nope"]
