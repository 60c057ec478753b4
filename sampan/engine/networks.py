"""Networks: ``network create/ls/inspect/rm/prune/connect/disconnect`` and container endpoints.

Vocabulary: a *network* has a driver (``bridge``, or the predefined ``host`` and ``none``), a
subnet with a gateway (IPAM, ``network/ipam.py``) and, for bridges, a Linux bridge (``sampan0``
for the default network ``bridge``).  An *endpoint* is a container's attachment to one network:
an address, a MAC, aliases, published ports, and a veth pair in the container's network
namespace (its *sandbox*, ``<exec-root>/netns/<container id>``, joined by the OCI spec by path).

Lifecycle of a container's networking (``network_sandbox.py`` adds these methods)::

    sandbox = svc.setup(cid, name=..., requests=[AttachRequest("bridge")], ports=[...])
    ...   # the runtime joins sandbox.netns; DNS answers on 127.0.0.11 inside it
    svc.teardown(cid)        # rules, DNS, addresses released; the netns (and its veths) go

Persistence: networks and endpoints live in the database (component ``networks``), so address
allocations and published ports survive a daemon restart, and ``reconcile`` (at start) rebuilds
sampan's whole nftables table from them: exactly one set of rules, whatever a killed daemon
left.  Rules are rebuilt and applied atomically after every change (``network/portmap.py``).
"""

from __future__ import annotations

import builtins
import json
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sampan import errors
from sampan.engine.events import EventBus
from sampan.engine.network_model import (
    MIGRATIONS,
    PREDEFINED,
    EndpointInfo,
    IpamConfig,
    Network,
    NetworkConfig,
    endpoint_from_row,
    network_from_row,
)
from sampan.engine.network_sandbox import SandboxMixin
from sampan.network import bridge as bridgemod
from sampan.network import dns as dnsmod
from sampan.network import ipam, netlink, portmap
from sampan.network.dockercompat import DockerUserChain
from sampan.network.proxy import Forward, UserlandProxy
from sampan.network.resolv import ResolvConf
from sampan.storage.db import Database

COMPONENT = "networks"
FILTERS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})

__all__ = ["NetworkService", "NetworkConfig", "Network", "EndpointInfo", "IpamConfig"]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


class NetworkService(SandboxMixin):
    def __init__(self, cfg: NetworkConfig, db: Database, events: EventBus | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.events = events or EventBus()
        self.lock = threading.RLock()
        self.subnets: dict[str, ipam.Subnet] = {}
        self.subnets6: dict[str, ipam.Subnet6] = {}  # --ipv6 networks' IPv6 subnets
        self._applied: builtins.list[portmap.BridgeRules] | None = None  # the bridges last applied
        self.writer = portmap.RuleWriter()
        self.proxy: UserlandProxy | None = None
        self._published_early: set[str] = set()  # endpoints whose ports setup already added
        self._ensured: set[str] = set()  # bridges known to be up with their address
        self.nft = cfg.nft and portmap.available()
        self.compat = DockerUserChain(enabled=cfg.nft)
        self.dns = dnsmod.DnsServer(cfg.dns_upstreams or ResolvConf.read(cfg.resolv_conf).upstreams(),
                                    upstream_port=cfg.dns_upstream_port)
        #: (container id or name) -> (id, name, netns or None); set by the daemon's wiring
        self.containers: Callable[[str], tuple[str, str, Path | None]] = self._no_containers
        #: (container id, network name) -> {link alias: linked container's name} (links on user networks)
        self.link_aliases: Callable[[str, str], dict[str, str]] = lambda cid, network: {}
        db.migrate(COMPONENT, MIGRATIONS)
        self._ensure_predefined()
        self._load_subnets()

    @staticmethod
    def _no_containers(ref: str) -> tuple[str, str, Path | None]:
        raise errors.NoSuchContainer(ref)

    # ------------------------------------------------------------------ startup

    def _ensure_predefined(self) -> None:
        if self.cfg.bridge_enabled and self.cfg.ipv6 and not self.cfg.fixed_cidr_v6:
            raise errors.Unavailable(f"Error creating default \"bridge\" network: {ipam.NO_V6_POOL}")
        for name, driver in PREDEFINED:
            if self.db.query_one("SELECT 1 FROM networks WHERE name = ?", (name,)):
                if name == "bridge":
                    self._default_bridge_v6()
                continue
            if driver == "bridge" and not self.cfg.bridge_enabled:
                continue
            cfg = IpamConfig()
            options: dict[str, str] = {}
            bridge = ""
            if driver == "bridge":
                cfg = self._default_bridge_ipam()
                bridge = self.cfg.bridge_name
                options = {bridgemod.OPT_DEFAULT: "true", bridgemod.OPT_NAME: bridge,
                           bridgemod.OPT_ICC: "true", bridgemod.OPT_MASQ: "true",
                           bridgemod.OPT_HOST_IP: "0.0.0.0", bridgemod.OPT_MTU: str(self.cfg.mtu)}
            configs = [cfg] if cfg.subnet else []
            if driver == "bridge" and self.cfg.ipv6:
                configs.append(self._default_bridge_ipam6())
            self._insert(Network(id=secrets.token_hex(32), name=name, driver=driver, created=_now(),
                                 ipam=configs, options=options, bridge=bridge))

    def _default_bridge_ipam6(self) -> IpamConfig:
        """``--ipv6 --fixed-cidr-v6 CIDR``: the default bridge's IPv6 subnet, gateway ``::1`` of it."""
        sub6 = ipam.Subnet6.make(self.cfg.fixed_cidr_v6)
        return IpamConfig(subnet=str(sub6.network), gateway=str(sub6.gateway))

    def _default_bridge_v6(self) -> None:
        """A restart with other ``--ipv6``/``--fixed-cidr-v6`` flags: the default bridge follows them
        (while no container is on it, as its addresses are handed out)."""
        n = self.get("bridge")
        want = [c for c in n.ipam if c is n.ipam4] + ([self._default_bridge_ipam6()] if self.cfg.ipv6 else [])
        if [c.__dict__ for c in want] == [c.__dict__ for c in n.ipam] or self._endpoints(network_id=n.id):
            return
        self.db.execute("UPDATE networks SET ipam = ? WHERE id = ?", (json.dumps([c.__dict__ for c in want]), n.id))

    def _default_bridge_ipam(self) -> IpamConfig:
        if self.cfg.bip:
            iface = ipam.parse_network(self.cfg.bip, "bip")
            gw = self.cfg.bip.split("/")[0]
            return IpamConfig(subnet=str(iface), gateway=gw)
        net = ipam.choose_subnet(self.cfg.default_pools, self._taken())
        return IpamConfig(subnet=str(net), gateway=str(next(net.hosts())))

    def _taken(self, exclude: str = "") -> list[ipam.Net]:
        taken = [ipam.parse_network(c.subnet) for n in self._all() if n.id != exclude and n.ipam4
                 for c in [n.ipam4]]
        return taken + netlink.routed_networks()

    def _load_subnets(self) -> None:
        for n in self._all():
            c, c6 = n.ipam4, n.ipam6
            if c is not None:
                sub = ipam.Subnet.make(c.subnet, gateway=c.gateway, ip_range=c.ip_range, aux=c.aux_addresses)
                for ep in self._endpoints(network_id=n.id):
                    sub.allocated.add(ipam.IPv4(ep.address))
                self.subnets[n.id] = sub
            if c6 is not None:
                sub6 = ipam.Subnet6.make(c6.subnet, gateway=c6.gateway, ip_range=c6.ip_range, aux=c6.aux_addresses)
                sub6.allocated.update(ipam.IPv6(ep.address6) for ep in self._endpoints(network_id=n.id) if ep.address6)
                self.subnets6[n.id] = sub6

    # ------------------------------------------------------------------ rows

    def _insert(self, n: Network) -> None:
        self.db.execute(
            "INSERT INTO networks (id, name, driver, created, internal, attachable, labels, options, ipam, bridge,"
            " ipam_options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (n.id, n.name, n.driver, n.created, int(n.internal), int(n.attachable), json.dumps(n.labels),
             json.dumps(n.options), json.dumps([c.__dict__ for c in n.ipam]), n.bridge, json.dumps(n.ipam_options)),
        )

    def _all(self) -> builtins.list[Network]:
        return [network_from_row(r) for r in self.db.query("SELECT * FROM networks ORDER BY created, name")]

    def _endpoints(self, *, network_id: str = "", container_id: str = "") -> builtins.list[EndpointInfo]:
        sql, args = "SELECT * FROM endpoints WHERE 1", list[str]()
        if network_id:
            sql, args = sql + " AND network_id = ?", [*args, network_id]
        if container_id:
            sql, args = sql + " AND container_id = ?", [*args, container_id]
        return [endpoint_from_row(r) for r in self.db.query(sql + " ORDER BY ifname", args)]

    def get(self, ref: str) -> Network:
        """By full ID, exact name, or unique ID prefix (Docker's order)."""
        rows = self.db.query("SELECT * FROM networks WHERE id = ? OR name = ?", (ref, ref))
        if not rows and ref:
            rows = self.db.query("SELECT * FROM networks WHERE id LIKE ?", (ref.replace("%", "") + "%",))
            if len(rows) > 1:
                raise errors.InvalidArgument(f"network {ref} is ambiguous ({len(rows)} matches found based on ID prefix)")
        if not rows:
            raise errors.NoSuchNetwork(ref)
        exact = [r for r in rows if r["id"] == ref] or rows
        return network_from_row(exact[0])

    # ------------------------------------------------------------------ create / inspect / list

    def create(self, name: str, *, driver: str = "bridge", subnet: str = "", gateway: str = "", ip_range: str = "",
               aux_addresses: dict[str, str] | None = None, ipam_options: dict[str, str] | None = None,
               internal: bool = False, attachable: bool = False,
               labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
               enable_ipv6: bool = False, subnet6: str = "", gateway6: str = "", ip_range6: str = "",
               aux_addresses6: dict[str, str] | None = None) -> Network:
        """A bridge network; with ``enable_ipv6`` also an IPv6 subnet (``subnet6``, required: there is
        no default IPv6 pool, as dockerd without one) on the same bridge."""
        driver = driver or "bridge"
        if not name:
            raise errors.InvalidArgument("network name is required")
        if driver in ("host", "null", "none") or name in ("host", "none", "bridge", "default"):
            raise errors.Conflict(f"operation is not permitted on predefined {name} network")
        if driver != "bridge":
            raise errors.NotFound(f'could not find plugin {driver} in v1 plugin registry: plugin not found')
        if subnet6 and not enable_ipv6:
            raise errors.InvalidArgument(ipam.V6_NOT_ENABLED)
        if (gateway6 or ip_range6 or aux_addresses6) and not subnet6:
            raise errors.InvalidArgument("gateway, ip-range and aux-address need a subnet")
        if enable_ipv6 and not subnet6:
            raise errors.Unavailable(ipam.NO_V6_POOL)
        if (gateway or ip_range or aux_addresses) and not subnet:
            raise errors.InvalidArgument("gateway, ip-range and aux-address need a subnet")
        nid = secrets.token_hex(32)
        opts = bridgemod.BridgeOptions.parse(dict(options or {}), default_name=f"br-{nid[:12]}")
        with self.lock:
            if self.db.query_one("SELECT 1 FROM networks WHERE name = ?", (name,)):
                raise errors.Conflict(f"network with name {name} already exists")
            if any(n.bridge == opts.name for n in self._all()):
                raise errors.Conflict(f"bridge name {opts.name} is already used by another network")
            if subnet:
                net = ipam.parse_network(subnet)
                ipam.check_no_overlap(net, self._subnets_in_use())
            else:
                net = ipam.choose_subnet(self.cfg.default_pools, self._taken())
            sub = ipam.Subnet.make(str(net), gateway=gateway, ip_range=ip_range, aux=aux_addresses)
            configs = [IpamConfig(str(sub.network), str(sub.gateway), ip_range and str(sub.ip_range),
                                  dict(aux_addresses or {}))]
            sub6 = None
            if subnet6:
                sub6 = ipam.Subnet6.make(subnet6, gateway=gateway6, ip_range=ip_range6, aux=aux_addresses6)
                ipam.check_no_overlap(sub6.network, self._subnets_in_use())
                configs.append(IpamConfig(str(sub6.network), str(sub6.gateway), ip_range6 and str(sub6.ip_range),
                                          dict(aux_addresses6 or {})))
            n = Network(id=nid, name=name, driver=driver, created=_now(), internal=internal, attachable=attachable,
                        labels=dict(labels or {}), options=dict(options or {}), bridge=opts.name,
                        ipam_options=None if ipam_options is None else dict(ipam_options), ipam=configs)
            try:
                self._ensure_bridge(n, opts.mtu)
                self._insert(n)
                self.subnets[nid] = sub
                if sub6 is not None:
                    self.subnets6[nid] = sub6
                self.sync_rules()
            except BaseException:
                self.db.execute("DELETE FROM networks WHERE id = ?", (nid,))
                self.subnets.pop(nid, None)
                self.subnets6.pop(nid, None)
                bridgemod.delete_bridge(opts.name)
                self._ensured.discard(opts.name)
                raise
        self.events.publish("network", "create", nid, {"name": name, "type": driver})
        return self.inspect(nid)

    def _subnets_in_use(self) -> builtins.list[tuple[str, ipam.Net | ipam.Net6]]:
        out: builtins.list[tuple[str, ipam.Net | ipam.Net6]] = []
        for n in self._all():
            for c in n.ipam:
                if c.subnet:
                    out.append((n.name, ipam.parse_network6(c.subnet) if ipam.is_ipv6(c.subnet) else ipam.parse_network(c.subnet)))
        return out

    def _ensure_bridge(self, n: Network, mtu: int) -> None:
        """The network's bridge, up, with its gateway addresses (IPv4, and IPv6 on an --ipv6 network)."""
        c, c6 = n.ipam4, n.ipam6
        assert c is not None
        bridgemod.ensure_bridge(n.bridge, gateway=c.gateway, prefixlen=int(c.subnet.split("/")[1]), mtu=mtu,
                                gateway6=c6.gateway if c6 else "", prefixlen6=int(c6.subnet.split("/")[1]) if c6 else 0)
        self._ensured.add(n.bridge)

    def inspect(self, ref: str) -> Network:
        n = self.get(ref)
        n.containers = {ep.container_id: ep for ep in self._endpoints(network_id=n.id)}
        return n

    def list(self, *, filters: dict[str, builtins.list[str]] | None = None) -> builtins.list[Network]:
        filters = filters or {}
        for key in filters:
            if key not in FILTERS:
                raise errors.InvalidArgument(f"invalid filter '{key}'")
        out = []
        for n in self._all():
            n.containers = {ep.container_id: ep for ep in self._endpoints(network_id=n.id)}
            if self._matches(n, filters):
                out.append(n)
        return out

    def _matches(self, n: Network, f: dict[str, builtins.list[str]]) -> bool:
        predefined = n.name in {p for p, _ in PREDEFINED}
        if f.get("name") and not any(v in n.name for v in f["name"]):
            return False
        if f.get("id") and not any(n.id.startswith(v) for v in f["id"]):
            return False
        if f.get("driver") and n.driver not in f["driver"]:
            return False
        if f.get("scope") and "local" not in f["scope"]:
            return False
        if f.get("type") and ("builtin" if predefined else "custom") not in f["type"]:
            return False
        for value in f.get("dangling", []):
            if (not n.containers and not predefined) != (value.lower() in ("1", "true")):
                return False
        for label in f.get("label", []):
            key, sep, value = label.partition("=")
            if key not in n.labels or (sep and n.labels[key] != value):
                return False
        return True

    # ------------------------------------------------------------------ remove / prune

    def remove(self, ref: str) -> None:
        with self.lock:
            n = self.get(ref)
            if n.name in {p for p, _ in PREDEFINED}:
                raise errors.Conflict(f"{n.name} is a pre-defined network and cannot be removed")
            users = self._endpoints(network_id=n.id)
            if users:
                raise errors.Conflict(
                    f"error while removing network: network {n.name} id {n.id} has active endpoints "
                    f"({', '.join(ep.container_name or ep.container_id[:12] for ep in users)})")
            self.db.execute("DELETE FROM networks WHERE id = ?", (n.id,))
            self.subnets.pop(n.id, None)
            self.subnets6.pop(n.id, None)
            self.sync_rules()
            bridgemod.delete_bridge(n.bridge)
            self._ensured.discard(n.bridge)
            self.compat.remove(n.bridge)
        self.events.publish("network", "destroy", n.id, {"name": n.name, "type": n.driver})

    def prune(self, *, filters: dict[str, builtins.list[str]] | None = None) -> builtins.list[str]:
        filters = dict(filters or {})
        until = filters.pop("until", [])
        removed = []
        for n in self.list(filters={k: v for k, v in filters.items() if k == "label"}):
            if n.name in {p for p, _ in PREDEFINED} or n.containers:
                continue
            if until and n.created > until[0]:
                continue
            try:
                self.remove(n.id)
            except errors.Conflict:
                continue
            removed.append(n.name)
        return removed

    # ------------------------------------------------------------------ rules

    def _desired(self) -> tuple[builtins.list[portmap.BridgeRules], builtins.list[portmap.PortMapping], dict[str, Network]]:
        used = {ep.network_id for ep in self._endpoints()}
        # the default bridge counts only while it has endpoints: a daemon that never ran a
        # container there leaves another daemon's sampan0 (same name) alone
        nets = [n for n in self._all() if n.driver == "bridge" and n.ipam4 and netlink.link_exists(n.bridge)
                and (n.name != "bridge" or n.id in used or n.bridge in self._ensured)]
        by_net = {n.id: n for n in nets}
        rules = []
        for n in nets:
            opts = bridgemod.BridgeOptions.parse(n.options, default_name=n.bridge)
            c4, c6 = n.ipam4, n.ipam6
            assert c4 is not None
            rules.append(portmap.BridgeRules(bridge=n.bridge, subnet=c4.subnet, masquerade=opts.masquerade,
                                             icc=opts.icc, internal=n.internal, subnet6=c6.subnet if c6 else ""))
        return sorted(rules, key=lambda r: r.bridge), self._mappings(self._endpoints(), by_net), by_net

    @staticmethod
    def _mappings(endpoints: builtins.list[EndpointInfo], by_net: dict[str, Network]) -> builtins.list[portmap.PortMapping]:
        return [portmap.PortMapping(p.proto, p.host_ip, p.host_port, ep.address, p.container_port, by_net[ep.network_id].bridge,
                                    ep.address6)
                for ep in endpoints if ep.network_id in by_net and not by_net[ep.network_id].internal for p in ep.ports]

    def sync_rules(self, *, added: builtins.list[EndpointInfo] | None = None,
                   removed: builtins.list[EndpointInfo] | None = None) -> None:
        """Bring sampan's nftables table in line with the database.

        When only a container's endpoints changed (``added``/``removed``) and the bridges are
        those last applied, only its published ports change (map elements: one cheap ``nft``
        run on setup, a background one on teardown); otherwise the whole table is rebuilt
        atomically.
        """
        with self.lock:
            rules, ports, by_net = self._desired()
            if not self.nft:
                self._sync_proxies(ports)
                return
            self._sync_proxies(portmap.loopback6(ports))  # [::1] on --ipv6 networks (nothing otherwise)
            table = self.cfg.nft_table
            if not rules:
                if self._applied is not None or portmap.table_exists(table):
                    self.writer.run(lambda: portmap.remove(table))
                self._applied = None
                return
            if self._applied == rules and (added is not None or removed is not None):
                gone = self._mappings(removed or [], by_net)
                new = self._mappings([ep for ep in added or [] if ep.id not in self._published_early], by_net)
                self._published_early.difference_update(ep.id for ep in added or [])
                if gone:
                    self.writer.submit(lambda: portmap.apply(portmap.elements(table, gone, add=False)))
                if new:
                    self.writer.run(lambda: portmap.apply(portmap.elements(table, new, add=True)))
            else:
                doc = portmap.ruleset(table, rules, ports)
                self.writer.run(lambda: portmap.apply(doc))
                self._applied = rules
                for r in rules:  # Docker's FORWARD drop policy: checked when bridges change
                    self.compat.ensure(r.bridge)
            forwarding = any(not n.internal for n in by_net.values()) and bool(self._endpoints())
            if forwarding and netlink.get_sysctl("net.ipv4.ip_forward") == "0":
                netlink.set_sysctl("net.ipv4.ip_forward", "1")
            forwarding6 = forwarding and any(not n.internal and n.enable_ipv6 for n in by_net.values())
            if forwarding6 and netlink.get_sysctl("net.ipv6.conf.all.forwarding") == "0":  # as dockerd with --ipv6
                netlink.set_sysctl("net.ipv6.conf.all.forwarding", "1")

    def _sync_proxies(self, ports: builtins.list[portmap.PortMapping]) -> None:
        """Without nftables, published ports are served by the userland proxy."""
        want = {Forward(p.proto, p.host_ip, p.host_port, p.container_ip, p.container_port) for p in ports}
        if self.proxy is None:
            if not want:
                return
            self.proxy = UserlandProxy()
        for fwd in set(self.proxy.active()) - want:
            self.proxy.stop(fwd)
        for fwd in sorted(want - set(self.proxy.active()), key=lambda f: (f.proto, f.host_port)):
            self.proxy.start(fwd)

    def reconcile(self) -> None:
        """At start: recreate bridges of known networks, drop endpoints whose sandbox is gone,
        and rebuild the rules (exactly one set, whatever a killed daemon left)."""
        with self.lock:
            for ep in self._endpoints():
                if not Path(ep.netns).exists() or not netlink.link_exists(bridgemod.host_veth_name(ep.id)):
                    self._forget(ep)
            for n in self._all():
                if n.driver == "bridge" and n.ipam4 and (n.name != "bridge" or self._endpoints(network_id=n.id)):
                    opts = bridgemod.BridgeOptions.parse(n.options, default_name=n.bridge)
                    self._ensure_bridge(n, opts.mtu)
            self._applied = None  # whatever is in the kernel now, rebuild it whole
            self.sync_rules()
            # containers that outlived a daemon restart: their embedded DNS died with it
            names = {n.id: n.name for n in self._all()}
            for ep in self._endpoints():
                if names.get(ep.network_id) not in (None, "bridge"):
                    try:
                        self.dns.serve(ep.container_id, Path(ep.netns), self.resolver(ep.container_id))
                    except errors.SampanError:
                        continue

    def _forget(self, ep: EndpointInfo) -> None:
        self.db.execute("DELETE FROM endpoints WHERE id = ?", (ep.id,))
        sub = self.subnets.get(ep.network_id)
        if sub is not None:
            sub.release(ep.address)
        sub6 = self.subnets6.get(ep.network_id)
        if sub6 is not None and ep.address6:
            sub6.release(ep.address6)

    def close(self) -> None:
        """Clean shutdown: with no endpoint left, sampan's table and the default bridge go;
        otherwise (live restore) the rules stay for the running containers."""
        with self.lock:
            self.dns.close()
            self.writer.flush()
            if self.proxy is not None:
                self.proxy.close()
            if self._endpoints():
                return
            if self.nft and self._applied is not None:
                portmap.remove(self.cfg.nft_table)
            for n in self._all():
                if n.bridge and n.name == "bridge" and n.bridge in self._ensured:
                    bridgemod.delete_bridge(n.bridge)
                if n.bridge:
                    self.compat.remove(n.bridge)

    def info(self) -> dict[str, str]:
        """What ``info`` reports about networking (firewall backend, Docker coexistence)."""
        out = {"FirewallBackend": "nftables" if self.nft else "userland-proxy"}
        if self.nft:
            out["Table"] = f"inet {self.cfg.nft_table}"
        out["DOCKER-USER"] = ", ".join(f"sampan:{b}" for b in self.compat.inserted()) or "not used"
        return out

