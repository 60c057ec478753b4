"""NAT, published ports and isolation in sampan's own nftables table (``inet sampan``).

sampan owns one table (its name is configurable, ``--nft-table``, so parallel daemons and tests
never collide) and nothing else: every change regenerates the table's whole content from the
engine's state (bridges and published ports) and applies it as ONE JSON document with
``nft -j -f -``, starting with ``add table; delete table; add table``.  The kernel applies a
document atomically (measured: 4.5 ms), so there is never a moment with half the rules, and
*reconcile* at startup is the same call: whatever a SIGKILLed daemon left behind is replaced by
exactly one set of rules.  ``remove`` deletes the table on clean shutdown.

Chains (hooks and priorities as Docker's iptables rules have them, in nft terms)::

    prerouting  nat    dstnat  fib daddr type local -> jump publish   (from other hosts, hairpin)
    output      nat    dstnat  fib daddr type local -> jump publish   (from the host itself)
    publish                     dnat ip to ip daddr . l4proto . th dport map @publish_addr_ip
                                           : ip daddr . l4proto . th dport map @publish_addr_port
                                dnat ip to l4proto . th dport map @publish_any_ip : (same) @publish_any_port
    postrouting nat    srcnat  ip saddr SUBNET oifname != BRIDGE masquerade    (egress)
                               ip saddr 127.0.0.0/8 oifname BRIDGE masquerade  (127.0.0.1:HP)
                               ip saddr SUBNET oifname BRIDGE ct status dnat masquerade (hairpin)

With an ``--ipv6`` network (``BridgeRules.subnet6``) the same masquerade and hairpin rules
match ``ip6 saddr``, and ``publish`` gets the IPv6 maps (``publish_addr6_*``, ``publish_any6_*``,
``dnat ip6``); ports on ``[::1]`` cannot be DNAT'ed (no ``route_localnet`` in IPv6) and are
listed by ``loopback6`` for the userland proxy.  Without IPv6 networks the table has none of it.

Published ports are *elements of two maps*, so a container's ports are added with one cheap
``add element`` document (``elements``) instead of rewriting chains; the chains change only
when networks do.
    forward     filter filter  policy accept; drops only: between user networks, out of and into
                               --internal networks, and inside an icc=false bridge

Reaching ``127.0.0.1:HP`` also needs ``route_localnet=1`` on that bridge only (the kernel
otherwise refuses to route a 127/8 source out of it): ``bridge.py`` sets it.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sampan import errors

NFT = "nft"
_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
Json = dict[str, Any]


@dataclass(frozen=True)
class BridgeRules:
    """What the rules need to know of one bridge network."""

    bridge: str
    subnet: str  # CIDR
    masquerade: bool = True
    icc: bool = True
    internal: bool = False
    isolated: bool = True  # isolated from sampan's other bridges (Docker: every bridge network)
    subnet6: str = ""  # CIDR of an --ipv6 network's IPv6 subnet


@dataclass(frozen=True)
class PortMapping:
    """One published port: ``host_ip:host_port/proto`` -> ``container_ip:container_port``."""

    proto: str  # "tcp" | "udp" | "sctp"
    host_ip: str  # "" or "0.0.0.0" = every address of the host
    host_port: int
    container_ip: str
    container_port: int
    bridge: str
    container_ip6: str = ""  # the container's IPv6 address on an --ipv6 network


def check_table(name: str) -> str:
    if not _TABLE.match(name):
        raise errors.InvalidArgument(f"invalid nftables table name {name!r}: letters, digits and _ (32 at most)")
    return name


def _match(left: Json, right: Any, op: str = "==") -> Json:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> Json:
    return {"meta": {"key": key}}


def _ip(field: str, protocol: str = "ip") -> Json:
    return {"payload": {"protocol": protocol, "field": field}}


def _prefix(cidr: str) -> Json:
    addr, _, length = cidr.partition("/")
    return {"prefix": {"addr": addr, "len": int(length or (128 if ":" in addr else 32))}}


_LOCAL = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
_TH_DPORT = {"payload": {"protocol": "th", "field": "dport"}}
MAP_ADDR = "publish_addr"  # host ip . proto . port -> container ip . port
MAP_ANY = "publish_any"  # proto . port -> container ip . port (every host address)
MAP_ADDR6 = "publish_addr6"  # the same for IPv6 (--ipv6 networks): host ip6 . proto . port -> container ip6
MAP_ANY6 = "publish_any6"
ANY_HOST = ("", "0.0.0.0", "::")
LOOPBACK6 = "::1"


def _specific(p: PortMapping) -> bool:
    return p.host_ip not in ANY_HOST


def _v6_host(p: PortMapping) -> bool:
    return ":" in p.host_ip


def _maps(p: PortMapping) -> list[str]:
    """The maps holding ``p``: IPv4 ones unless published on an IPv6 address; IPv6 ones when the
    container has an IPv6 address and the port is on every address (``""``/``::``) or a
    non-loopback IPv6 one (``::1`` is served by the userland proxy: ``loopback6``)."""
    out = []
    if not _v6_host(p) or p.host_ip == "::":
        out.append(MAP_ADDR if _specific(p) else MAP_ANY)
    if p.container_ip6 and p.host_ip != "0.0.0.0" and p.host_ip != LOOPBACK6 and (_v6_host(p) or not p.host_ip):
        out.append(MAP_ADDR6 if _specific(p) else MAP_ANY6)
    return out


def _key(p: PortMapping, kind: str = MAP_ANY) -> Json:
    specific = kind in (MAP_ADDR, MAP_ADDR6)
    return {"concat": [p.host_ip, p.proto, p.host_port] if specific else [p.proto, p.host_port]}


def _elem(p: PortMapping, suffix: str, kind: str = MAP_ANY) -> list[Any]:
    ip = p.container_ip6 if kind in (MAP_ADDR6, MAP_ANY6) else p.container_ip
    return [_key(p, kind), ip if suffix == "_ip" else p.container_port]


def loopback6(ports: Iterable[PortMapping]) -> list[PortMapping]:
    """Ports to serve on ``[::1]`` with the userland proxy, towards the container's IPv6 address.

    The kernel does not route a ``::1`` source out of the loopback device (IPv6 has no
    ``route_localnet``), so DNAT cannot reach a container from ``[::1]``; dockerd's docker-proxy
    serves it the same way (towards the IPv4 address of a container without IPv6, for ``-p [::1]:P:C``)."""
    return [PortMapping(p.proto, LOOPBACK6, p.host_port, p.container_ip6 or p.container_ip, p.container_port, p.bridge,
                        p.container_ip6)
            for p in ports if p.host_ip == LOOPBACK6 or (p.container_ip6 and p.host_ip in ("", "::"))]


def elements(table: str, ports: Iterable[PortMapping], *, add: bool) -> Json:
    """A document adding (or deleting) published ports only: the per-container change.

    Adding elements is cheap (about 4 ms here); deleting costs a kernel grace period (about
    12 ms under load), so callers run deletions in the background (``RuleWriter``).
    """
    check_table(table)
    verb = "add" if add else "delete"
    cmds: list[Json] = []
    for p in ports:
        for kind in _maps(p):
            for suffix in ("_ip", "_port"):
                elem = _elem(p, suffix, kind) if add else _key(p, kind)
                cmds.append({verb: {"element": {"family": "inet", "table": table, "name": kind + suffix, "elem": [elem]}}})
    return {"nftables": cmds}


CHAINS = ("prerouting", "output", "postrouting", "forward", "publish")


def ruleset(table: str, bridges: Iterable[BridgeRules], ports: Iterable[PortMapping], *, recreate: bool = True) -> Json:
    """The whole document that (re)creates ``inet <table>`` with these bridges and ports.

    ``recreate`` deletes and re-adds the table (startup reconcile: also removes anything a
    previous version left); otherwise the chains are kept and flushed, which is about three
    times cheaper (no hook re-registration) and just as atomic.
    """
    check_table(table)
    bridges = sorted(bridges, key=lambda b: b.bridge)
    ports = sorted(ports, key=lambda p: (p.proto, p.host_port, p.host_ip, p.container_ip))
    t = {"family": "inet", "name": table}
    cmds: list[Json] = [{"add": {"table": t}}]
    if recreate:
        cmds += [{"delete": {"table": t}}, {"add": {"table": t}}]

    def chain(name: str, **base: Any) -> None:
        cmds.append({"add": {"chain": {"family": "inet", "table": table, "name": name, **base}}})

    def rule(chain_name: str, *expr: Json, comment: str = "") -> None:
        r: Json = {"family": "inet", "table": table, "chain": chain_name, "expr": list(expr)}
        if comment:
            r["comment"] = comment
        cmds.append({"add": {"rule": r}})

    chain("prerouting", type="nat", hook="prerouting", prio=-100, policy="accept")
    chain("output", type="nat", hook="output", prio=-100, policy="accept")
    chain("postrouting", type="nat", hook="postrouting", prio=100, policy="accept")
    chain("forward", type="filter", hook="forward", prio=0, policy="accept")
    chain("publish")
    if not recreate:
        cmds += [{"flush": {"chain": {"family": "inet", "table": table, "name": c}}} for c in CHAINS]
    rule("prerouting", _LOCAL, {"jump": {"target": "publish"}})
    rule("output", _LOCAL, {"jump": {"target": "publish"}})

    # nft 1.0.6 cannot take a concatenated map value (ip . port) in JSON (it crashes), so each
    # kind of published port has two maps with the same key: one for the address, one for the port
    kinds: list[tuple[str, str, list[str], list[Json]]] = [
        (MAP_ADDR, "ip", ["ipv4_addr", "inet_proto", "inet_service"], [_ip("daddr"), _meta("l4proto"), _TH_DPORT]),
        (MAP_ANY, "ip", ["inet_proto", "inet_service"], [_meta("l4proto"), _TH_DPORT])]
    if any(b.subnet6 for b in bridges):  # --ipv6 networks: the same for IPv6 (not ::1, see loopback6)
        kinds += [(MAP_ADDR6, "ip6", ["ipv6_addr", "inet_proto", "inet_service"],
                   [_ip("daddr", "ip6"), _meta("l4proto"), _TH_DPORT]),
                  (MAP_ANY6, "ip6", ["inet_proto", "inet_service"], [_meta("l4proto"), _TH_DPORT])]
    for kind, family, key_type, key in kinds:
        chosen = [p for p in ports if kind in _maps(p)]
        addr_type = "ipv6_addr" if family == "ip6" else "ipv4_addr"
        for suffix, data_type in (("_ip", addr_type), ("_port", "inet_service")):
            m: Json = {"family": "inet", "table": table, "name": kind + suffix, "type": key_type, "map": data_type}
            if chosen:
                m["elem"] = [_elem(p, suffix, kind) for p in chosen]
            cmds.append({"add": {"map": m}})
        lookup = {"concat": key}
        guard = [_match(_meta("nfproto"), "ipv6"), _match(_ip("daddr", "ip6"), LOOPBACK6, "!=")] if kind == MAP_ANY6 else []
        rule("publish", *guard, {"dnat": {"family": family, "addr": {"map": {"key": lookup, "data": f"@{kind}_ip"}},
                                          "port": {"map": {"key": lookup, "data": f"@{kind}_port"}}}})
    for b in bridges:
        if b.masquerade and not b.internal:
            rule("postrouting", _match(_ip("saddr"), _prefix(b.subnet)),
                 _match(_meta("oifname"), b.bridge, "!="), {"masquerade": None})
        # 127.0.0.1:HOSTPORT -> container (route_localnet is on for this bridge only)
        rule("postrouting", _match(_ip("saddr"), _prefix("127.0.0.0/8")),
             _match(_meta("oifname"), b.bridge), {"masquerade": None})
        # hairpin: a container reaching a published port of its own bridge
        # (no iifname: with br_netfilter a bridged, DNAT'ed frame has no input device here)
        rule("postrouting", _match(_ip("saddr"), _prefix(b.subnet)), _match(_meta("oifname"), b.bridge),
             _match({"ct": {"key": "status"}}, "dnat", "in"), {"masquerade": None}, comment="hairpin")
        if b.subnet6:  # the same for the IPv6 subnet of an --ipv6 network (no ::1 rule: see network docs)
            if b.masquerade and not b.internal:
                rule("postrouting", _match(_ip("saddr", "ip6"), _prefix(b.subnet6)),
                     _match(_meta("oifname"), b.bridge, "!="), {"masquerade": None})
            rule("postrouting", _match(_ip("saddr", "ip6"), _prefix(b.subnet6)), _match(_meta("oifname"), b.bridge),
                 _match({"ct": {"key": "status"}}, "dnat", "in"), {"masquerade": None}, comment="hairpin")
    isolated = [b.bridge for b in bridges if b.isolated]
    for b in bridges:
        if b.internal:
            rule("forward", _match(_meta("iifname"), b.bridge), _match(_meta("oifname"), b.bridge, "!="), {"drop": None})
            rule("forward", _match(_meta("oifname"), b.bridge), _match(_meta("iifname"), b.bridge, "!="), {"drop": None})
        others = [o for o in isolated if o != b.bridge]
        if b.isolated and others:
            rule("forward", _match(_meta("iifname"), b.bridge), _match(_meta("oifname"), {"set": others}), {"drop": None})
        if not b.icc:
            rule("forward", _match(_meta("iifname"), b.bridge), _match(_meta("oifname"), b.bridge), {"drop": None})
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *cmds]}


def _nft(args: list[str], document: str = "") -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([NFT, *args], input=document, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise errors.Unavailable("nftables (`nft`) is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise errors.Internal("nft timed out after 30 s") from exc


def available() -> bool:
    """Whether nftables can be used here (the binary exists and the kernel answers)."""
    if shutil.which(NFT) is None:
        return False
    return _nft(["list", "tables"]).returncode == 0


def apply(document: Json) -> None:
    """Apply a document atomically (all of it or nothing)."""
    proc = _nft(["-j", "-f", "-"], json.dumps(document))
    if proc.returncode != 0:
        raise errors.Internal(f"nft: applying sampan's rules failed: {proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else 'unknown error'}")


def remove(table: str) -> None:
    """Delete sampan's table if it exists (clean shutdown, last network gone)."""
    check_table(table)
    if table_exists(table):
        proc = _nft(["delete", "table", "inet", table])
        if proc.returncode != 0 and table_exists(table):
            raise errors.Internal(f"nft delete table inet {table}: {proc.stderr.strip()}")


def table_exists(table: str) -> bool:
    return _nft(["list", "table", "inet", table]).returncode == 0


def listed(table: str) -> Json:
    """The table as nft prints it in JSON (tests, ``info``)."""
    proc = _nft(["-j", "list", "table", "inet", table])
    if proc.returncode != 0:
        raise errors.NotFound(f"nftables table inet {table} not found")
    data: Json = json.loads(proc.stdout)
    return data


class RuleWriter:
    """Applies documents in order on one thread: ``run`` waits, ``submit`` does not.

    Deleting published ports costs a kernel grace period (about 12 ms here), more than a
    container's teardown budget; teardown therefore ``submit``s the deletion and returns.  The
    queue keeps the order, so a later ``run`` (a new container reusing the port) lands after it.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[[], None], Future[None] | None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.failures: list[str] = []  # errors of submitted (unwaited) work, for ``info``/logs

    def _start(self) -> None:
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sampan-nft", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            job, fut = self._queue.get()
            try:
                job()
            except Exception as exc:
                if fut is not None:
                    fut.set_exception(exc)
                else:
                    self.failures.append(str(exc))
            else:
                if fut is not None:
                    fut.set_result(None)
            finally:
                self._queue.task_done()

    def run(self, job: Callable[[], None]) -> None:
        fut: Future[None] = Future()
        self._start()
        self._queue.put((job, fut))
        fut.result()

    def start(self, job: Callable[[], None]) -> Future[None]:
        """Queue ``job`` and return its future (the caller overlaps other work, then waits)."""
        fut: Future[None] = Future()
        self._start()
        self._queue.put((job, fut))
        return fut

    def submit(self, job: Callable[[], None]) -> None:
        self._start()
        self._queue.put((job, None))

    def flush(self) -> None:
        """Wait until everything submitted has been applied."""
        if self._thread is not None:
            self._queue.join()
