"""A container's network sandbox: its namespace, endpoints, published ports and DNS view.

``NetworkService`` (``networks.py``) inherits these methods; they are kept here by concern.

``setup`` does, in order, and undoes everything on failure:

1. create the namespace ``<exec-root>/netns/<container id>`` (unless given one);
2. for each requested network: allocate the address (``--ip`` or the next free one), make sure
   the bridge exists, create the veth pair (``eth0``, ``eth1``...) and record the endpoint;
3. choose random host ports (``-p 80``, ``-P``) and record the bindings on the first bridge
   endpoint; rebuild and apply the rules once (one ``nft`` run for the whole container);
4. serve the embedded DNS on 127.0.0.11 when a user-defined network is attached.

``teardown`` stops DNS, forgets the endpoints (addresses back to the pool), re-applies the rules
and unpins the namespace: the kernel then frees it and its veths asynchronously, which is why
teardown costs well under a millisecond plus one ``nft`` run.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sampan import errors
from sampan.engine.network_model import (
    EndpointInfo,
    Network,
    NetworkConfig,
    PortBinding,
    ports_json,
)
from sampan.network import bridge as bridgemod
from sampan.network import ipam, netlink, netns, portmap, resolv
from sampan.network.dns import DnsServer

if TYPE_CHECKING:
    from sampan.storage.db import Database


@dataclass(frozen=True)
class AttachRequest:
    """One network a container joins, with its endpoint settings (``--network-alias``, ``--ip``)."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4: str = ""
    mac: str = ""
    ipv6: str = ""  # --ip6 (an --ipv6 network only)


@dataclass
class Sandbox:
    netns: Path
    endpoints: list[EndpointInfo] = field(default_factory=list)
    embedded_dns: bool = False


def _family(host_ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host_ip else socket.AF_INET


def random_port(proto: str, host_ip: str, taken: set[int]) -> int:
    """A free host port from the kernel's ephemeral range, not used by another mapping."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    for _ in range(64):
        with socket.socket(_family(host_ip), kind) as s:
            s.bind((host_ip if host_ip not in ("", "0.0.0.0") else "0.0.0.0", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port
    raise errors.Unavailable("no free host port for a random port mapping")


def free_port_in(proto: str, host_ip: str, ports: range, taken: set[int]) -> int:
    """The first port of a host range that no mapping uses and no host socket holds (Docker's order)."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    for port in ports:
        if port in taken:
            continue
        with socket.socket(_family(host_ip), kind) as s:
            try:
                s.bind((host_ip if host_ip not in ("", "0.0.0.0") else "0.0.0.0", port))
            except OSError:
                continue
        return port
    raise errors.Conflict(f"Bind for {host_ip or '0.0.0.0'}:{ports.start}-{ports.stop - 1} failed: all ports are allocated")


class SandboxMixin:
    cfg: NetworkConfig
    db: Database
    lock: threading.RLock
    subnets: dict[str, ipam.Subnet]
    subnets6: dict[str, ipam.Subnet6]
    dns: DnsServer
    containers: Callable[[str], tuple[str, str, Path | None]]
    link_aliases: Callable[[str, str], dict[str, str]]
    _ensured: set[str]
    _applied: list[portmap.BridgeRules] | None
    _published_early: set[str]
    nft: bool
    writer: portmap.RuleWriter

    if TYPE_CHECKING:
        def get(self, ref: str) -> Network: ...
        def _endpoints(self, *, network_id: str = "", container_id: str = "") -> list[EndpointInfo]: ...
        def sync_rules(self, *, added: list[EndpointInfo] | None = None,
                       removed: list[EndpointInfo] | None = None) -> None: ...
        def _forget(self, ep: EndpointInfo) -> None: ...

    #: called with a container ID after ``connect``/``disconnect`` (the daemon refreshes inspect)
    changed: Callable[[str], None] = staticmethod(lambda cid: None)  # type: ignore[assignment]

    def endpoints_of(self, container_id: str) -> list[EndpointInfo]:
        return self._endpoints(container_id=container_id)

    def netns_path(self, container_id: str) -> Path:
        return self.cfg.exec_root / "netns" / container_id

    # ------------------------------------------------------------------ setup / teardown

    def setup(self, container_id: str, *, name: str, requests: Sequence[AttachRequest],
              ports: Sequence[PortBinding] = (), netns_path: Path | None = None) -> Sandbox:
        """Create the container's sandbox and attach it to ``requests`` (see the module doc)."""
        path = netns_path or netns.create(self.netns_path(container_id))
        sandbox = Sandbox(path)
        try:
            with self.lock:
                for i, req in enumerate(requests):
                    ep = self._attach(container_id, name, req, path, ifname=f"eth{i}", default_route=i == 0,
                                      ports=ports if i == 0 else ())
                    sandbox.endpoints.append(ep)
                if sandbox.endpoints:
                    self.sync_rules(added=sandbox.endpoints)
            sandbox.embedded_dns = any(self.get(ep.network_id).name != "bridge" for ep in sandbox.endpoints)
            if sandbox.embedded_dns:
                self.dns.serve(container_id, path, self.resolver(container_id))
        except BaseException:
            self.teardown(container_id, keep_netns=netns_path is not None)
            raise
        return sandbox

    def _attach(self, container_id: str, name: str, req: AttachRequest, path: Path, *, ifname: str,
                default_route: bool, ports: Sequence[PortBinding]) -> EndpointInfo:
        n = self.get(req.network)
        if n.driver != "bridge":
            raise errors.InvalidArgument(f"container cannot be connected to network {n.name} (driver {n.driver}) with others")
        if self._endpoints(network_id=n.id, container_id=container_id):
            raise errors.Conflict(f"endpoint with name {name} already exists in network {n.name}")
        if (req.ipv4 or req.ipv6) and n.name == "bridge":
            raise errors.InvalidArgument("user specified IP address is supported on user defined networks only")
        sub = self.subnets[n.id]
        sub6 = self.subnets6.get(n.id)
        if req.ipv6 and sub6 is None:
            raise errors.InvalidArgument(f"invalid IPv6 address {req.ipv6}: network {n.name} has no IPv6 subnet (create it with --ipv6)")
        opts = bridgemod.BridgeOptions.parse(n.options, default_name=n.bridge)
        if n.bridge not in self._ensured or not netlink.link_exists(n.bridge):
            bridgemod.ensure_bridge(n.bridge, gateway=str(sub.gateway), prefixlen=sub.network.prefixlen, mtu=opts.mtu)
            self._ensured.add(n.bridge)
        addr = sub.allocate(req.ipv4)
        addr6 = None
        try:
            addr6 = sub6.allocate(req.ipv6) if sub6 is not None else None
            bindings = self._bindings(ports, opts.host_binding_ipv4, ipv6=addr6 is not None)
            mac = ipam.check_mac(req.mac) if req.mac else ipam.mac_for(addr)
            ep = EndpointInfo(id=secrets.token_hex(32), network_id=n.id, container_id=container_id, container_name=name,
                              address=str(addr), prefixlen=sub.network.prefixlen, gateway=str(sub.gateway), mac=mac,
                              aliases=list(req.aliases), ifname=ifname, netns=str(path), ports=bindings,
                              address6=str(addr6 or ""), prefixlen6=sub6.network.prefixlen if sub6 else 0,
                              gateway6=str(sub6.gateway) if sub6 else "")
            # the ports' nft run overlaps the two `ip` runs (it needs only the address)
            pending = self._publish_early(n, ep)
            try:
                bridgemod.attach(bridgemod.Endpoint(ep.id, n.bridge, path, ifname, ep.address, ep.prefixlen,
                                                    ep.gateway, mac, opts.mtu, default_route,
                                                    ep.address6, ep.prefixlen6, ep.gateway6))
            finally:
                if pending is not None:
                    pending.result()
            self.db.execute(
                "INSERT INTO endpoints (id, network_id, container_id, container_name, address, prefixlen, gateway,"
                " mac, aliases, ifname, netns, ports, address6, prefixlen6, gateway6)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ep.id, n.id, container_id, name, ep.address, ep.prefixlen, ep.gateway, mac,
                 _json(ep.aliases), ifname, str(path), ports_json(bindings), ep.address6, ep.prefixlen6, ep.gateway6),
            )
        except BaseException:
            sub.release(addr)
            if addr6 is not None and sub6 is not None:
                sub6.release(addr6)
            if "ep" in locals() and ep.id in self._published_early:
                self._published_early.discard(ep.id)
                maps = [portmap.PortMapping(p.proto, p.host_ip, p.host_port, ep.address, p.container_port, n.bridge,
                                            ep.address6) for p in ep.ports]
                table = self.cfg.nft_table
                self.writer.submit(lambda: portmap.apply(portmap.elements(table, maps, add=False)))
            raise
        return ep

    def _publish_early(self, n: Network, ep: EndpointInfo) -> Future[None] | None:
        """Start adding ``ep``'s port elements when the table already has ``n``'s bridge."""
        if not ep.ports or not self.nft or not self._applied or n.internal \
                or not any(r.bridge == n.bridge for r in self._applied):
            return None
        maps = [portmap.PortMapping(p.proto, p.host_ip, p.host_port, ep.address, p.container_port, n.bridge, ep.address6)
                for p in ep.ports]
        table = self.cfg.nft_table
        self._published_early.add(ep.id)
        return self.writer.start(lambda: portmap.apply(portmap.elements(table, maps, add=True)))

    def _bindings(self, ports: Sequence[PortBinding], default_ip: str, *, ipv6: bool = False) -> list[PortBinding]:
        taken = {(p.proto, p.host_port) for ep in self._endpoints() for p in ep.ports}
        out = []
        for p in ports:
            if ":" in p.host_ip and p.host_ip != "::1" and not ipv6:
                raise errors.InvalidArgument(f"cannot publish on IPv6 address [{p.host_ip}]: the container's first network "
                                             "has no IPv6 subnet (create it with --ipv6)")
            host_ip = p.host_ip or ("" if default_ip in ("", "0.0.0.0") else default_ip)
            port = p.host_port
            if port == 0:
                port = random_port(p.proto, host_ip, {hp for proto, hp in taken if proto == p.proto})
            elif p.host_port_end:
                port = free_port_in(p.proto, host_ip, range(p.host_port, p.host_port_end + 1),
                                    {hp for proto, hp in taken if proto == p.proto})
            elif (p.proto, port) in taken:
                raise errors.Conflict(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already allocated")
            taken.add((p.proto, port))
            out.append(PortBinding(p.container_port, p.proto, host_ip, port))
        return out

    def teardown(self, container_id: str, *, keep_netns: bool = False) -> None:
        """Undo ``setup``; safe to call twice or after a partial setup."""
        self.dns.stop_serving(container_id)
        with self.lock:
            eps = self._endpoints(container_id=container_id)
            for ep in eps:
                self._forget(ep)
            if eps:
                self.sync_rules(removed=eps)
        if not keep_netns:
            netns.remove(self.netns_path(container_id))
        else:
            netlink.delete_links(bridgemod.host_veth_name(ep.id) for ep in eps)

    # ------------------------------------------------------------------ connect / disconnect

    def connect(self, network: str, container: str, *, aliases: Sequence[str] = (), ipv4: str = "",
                mac: str = "", ipv6: str = "") -> EndpointInfo:
        """Attach a running container to one more network (``network connect``)."""
        cid, name, path = self.containers(container)
        if path is None:
            raise errors.NotImplementedFeature("network connect of a container that is not running")
        with self.lock:
            count = len(self._endpoints(container_id=cid))
            ep = self._attach(cid, name, AttachRequest(network, tuple(aliases), ipv4, mac, ipv6), path, ifname=f"eth{count}",
                              default_route=count == 0, ports=())
            self.sync_rules(added=[ep])
        if self.get(ep.network_id).name != "bridge":
            self.dns.serve(cid, path, self.resolver(cid))
        self.changed(cid)
        return ep

    def disconnect(self, network: str, container: str, *, force: bool = False) -> None:
        n = self.get(network)
        try:
            cid = self.containers(container)[0]
        except errors.NotFound:
            if not force:
                raise
            cid = container
        with self.lock:
            eps = self._endpoints(network_id=n.id, container_id=cid)
            if not eps:
                raise errors.Conflict(f"container {container} is not connected to network {n.name}")
            for ep in eps:
                bridgemod.detach(bridgemod.Endpoint(ep.id, n.bridge, Path(ep.netns), ep.ifname, ep.address,
                                                    ep.prefixlen, ep.gateway, ep.mac))
                self._forget(ep)
            self.sync_rules(removed=eps)
        self.changed(cid)

    # ------------------------------------------------------------------ names

    def resolver(self, container_id: str) -> Callable[[str], list[str] | None]:
        """Names as seen from ``container_id``: containers sharing a user-defined network."""

        def resolve(name: str) -> list[str] | None:
            mine = {ep.network_id for ep in self._endpoints(container_id=container_id)}
            found: list[str] = []
            for nid in mine:
                network = self.get(nid).name
                if network == "bridge":
                    continue
                wanted = self.link_aliases(container_id, network).get(name, name)  # a link's alias: its target
                for ep in self._endpoints(network_id=nid):
                    names = {ep.container_name.lower(), ep.container_id[:12], *(a.lower() for a in ep.aliases)}
                    if wanted in names or (len(wanted) >= 12 and ep.container_id.startswith(wanted)):
                        found.append(ep.address)
                        if ep.address6:  # AAAA (dns.answer picks the family the query asks for)
                            found.append(ep.address6)
            return found or None

        return resolve

    def write_files(self, container_id: str, directory: Path, *, hostname: str, domainname: str = "",
                    dns: Sequence[str] = (), dns_search: Sequence[str] = (), dns_options: Sequence[str] = (),
                    extra_hosts: Sequence[str] = ()) -> dict[str, Path]:
        """``hostname``, ``hosts`` and ``resolv.conf`` for a container on bridge networks."""
        eps = self._endpoints(container_id=container_id)
        embedded = any(self.get(ep.network_id).name != "bridge" for ep in eps)
        host = resolv.ResolvConf.read(self.cfg.resolv_conf)
        conf = resolv.container_resolv(host, embedded=embedded, dns=dns, dns_search=dns_search, dns_options=dns_options)
        extra = []
        for item in extra_hosts:  # the default bridge's gateway only when asked for (--bridge none)
            hname, ip = resolv.parse_add_host(item)
            extra.append((hname, self._default_gateway() if ip == "host-gateway" else ip))
        aliases = [a for ep in eps for a in ep.aliases] if embedded else []
        own = [a for ep in eps[:1] for a in (ep.address, ep.address6) if a]  # and its IPv6 one, as Docker's
        hosts = resolv.render_hosts(hostname, own, aliases=aliases, extra=extra,
                                    domainname=domainname)
        return resolv.write_files(directory, hostname=hostname, hosts=hosts, resolv=conf)

    def _default_gateway(self) -> str:
        sub = self.subnets.get(self.get("bridge").id) if self.cfg.bridge_enabled else None
        if sub is None:
            raise errors.InvalidArgument("host-gateway needs the default bridge network")
        return str(sub.gateway)


def _json(value: object) -> str:
    import json

    return json.dumps(value)
