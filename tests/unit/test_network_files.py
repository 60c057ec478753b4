"""resolv.conf, hosts and the DNS wire format (pure logic)."""

from __future__ import annotations

import asyncio

import pytest

from sampan import errors
from sampan.network import dns, resolv

HOST = resolv.ResolvConf.parse("# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com corp\noptions edns0\n")


def test_default_bridge_gets_the_hosts_resolvers_without_loopback() -> None:
    conf = resolv.container_resolv(HOST, embedded=False)
    assert conf.render() == "nameserver 10.0.0.2\nsearch example.com corp\noptions edns0\n"
    only_local = resolv.ResolvConf.parse("nameserver 127.0.0.53\n")
    assert resolv.container_resolv(only_local, embedded=False).nameservers == ["8.8.8.8", "8.8.4.4"]


def test_user_networks_get_the_embedded_server_and_flags_override() -> None:
    conf = resolv.container_resolv(HOST, embedded=True)
    assert conf.nameservers == ["127.0.0.11"] and "ndots:0" in conf.options
    conf = resolv.container_resolv(HOST, embedded=False, dns=["1.1.1.1"], dns_search=["x.org"], dns_options=["ndots:2"])
    assert conf.render() == "nameserver 1.1.1.1\nsearch x.org\noptions ndots:2\n"
    with pytest.raises(errors.InvalidArgument, match="not an ip"):
        resolv.container_resolv(HOST, embedded=False, dns=["dns.example"])
    assert HOST.upstreams() == ["127.0.0.53", "10.0.0.2"]


def test_hosts_file() -> None:
    text = resolv.render_hosts("abc123", ["172.17.0.2"], aliases=["web"], extra=[("db", "10.0.0.9")])
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert "10.0.0.9\tdb\n" in text and text.endswith("172.17.0.2\tabc123 web\n")
    assert resolv.parse_add_host("gw:host-gateway") == ("gw", "host-gateway")
    assert resolv.parse_add_host("v6=[::1]") == ("v6", "::1")
    for bad in ("nohost", "x:notanip"):
        with pytest.raises(errors.InvalidArgument):
            resolv.parse_add_host(bad)


def test_dns_answer_round_trip() -> None:
    query = dns.build_query("Web.", qid=7)
    qid, name, qtype, _qclass, _end = dns.parse_question(query)
    assert (qid, name, qtype) == (7, "web", dns.TYPE_A)
    reply = dns.answer(query, ["10.1.0.2", "10.1.0.3"])
    assert dns.parse_answers(reply) == ["10.1.0.2", "10.1.0.3"] and dns.rcode_of(reply) == 0
    aaaa = dns.answer(dns.build_query("web", dns.TYPE_AAAA), ["10.1.0.2"])
    assert dns.parse_answers(aaaa) == [] and dns.rcode_of(aaaa) == 0
    with pytest.raises(ValueError):
        dns.parse_question(b"\x00\x01")


def test_dns_server_answers_known_names_and_forwards_the_rest() -> None:
    server = dns.DnsServer(["127.0.0.1"], upstream_port=9)  # nothing listens there: SERVFAIL

    async def ask(name: str) -> bytes | None:
        return await server.respond(dns.build_query(name), lambda n: ["10.9.0.2"] if n == "db" else None, tcp=False)

    try:
        dns.FORWARD_TIMEOUT = 0.5
        known = asyncio.run(ask("db"))
        assert known is not None and dns.parse_answers(known) == ["10.9.0.2"]
        other = asyncio.run(ask("example.org"))
        assert other is not None and dns.rcode_of(other) == 2
        assert asyncio.run(server.respond(b"junk", lambda n: None, tcp=False)) is None
    finally:
        dns.FORWARD_TIMEOUT = 3.0
        server.close()
