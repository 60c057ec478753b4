"""The bridge driver: a Linux bridge per network and a veth pair per endpoint.

Vocabulary: a *network* here is a bridge (``sampan0`` for the default network ``bridge``, or
``com.docker.network.bridge.name``, else ``br-<first 12 hex of the network ID>``) holding the
gateway address; an *endpoint* is one container's attachment: a veth pair whose host end
(``veth<7 hex>``) is enslaved to the bridge and whose other end is created directly inside the
container's network namespace as ``eth0`` (``eth1``... for further networks), with its address,
MAC (Docker's ``02:42:<IP bytes>`` unless ``--mac-address``) and, for the first network, the
default route through the gateway.  On an ``--ipv6`` network the bridge also holds the IPv6
gateway and each endpoint its IPv6 address (both without duplicate address detection) and, on
its first network, an IPv6 default route; IPv6 is switched on for those interfaces only.

Setup is two ``ip -batch`` runs (host side, then inside the namespace); teardown is one
(deleting the host end deletes the pair).  Both stay well under the 10 ms budget.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from sampan import errors
from sampan.network import netlink
from sampan.network.netns import entered as netns_entered

DEFAULT_BRIDGE = "sampan0"
DEFAULT_MTU = 1500

#: Docker's bridge driver options (``-o``); values are strings as on the wire.
OPT_NAME = "com.docker.network.bridge.name"
OPT_ICC = "com.docker.network.bridge.enable_icc"
OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
OPT_MTU = "com.docker.network.driver.mtu"
OPT_DEFAULT = "com.docker.network.bridge.default_bridge"
OPT_INHIBIT = "com.docker.network.bridge.inhibit_ipv4"
KNOWN_OPTIONS = frozenset({OPT_NAME, OPT_ICC, OPT_MASQ, OPT_HOST_IP, OPT_MTU, OPT_DEFAULT, OPT_INHIBIT})


@dataclass(frozen=True)
class BridgeOptions:
    """The driver options of one bridge network, parsed and checked once."""

    name: str
    icc: bool = True
    masquerade: bool = True
    host_binding_ipv4: str = ""
    mtu: int = DEFAULT_MTU

    @classmethod
    def parse(cls, options: dict[str, str], *, default_name: str) -> BridgeOptions:
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            raise errors.InvalidArgument(f"unknown bridge driver option {unknown[0]!r}")
        name = netlink.check_ifname(options.get(OPT_NAME) or default_name)
        try:
            mtu = int(options.get(OPT_MTU) or DEFAULT_MTU)
        except ValueError:
            raise errors.InvalidArgument(f"invalid MTU {options.get(OPT_MTU)!r}") from None
        if not 68 <= mtu <= 65535:
            raise errors.InvalidArgument(f"invalid MTU {mtu}: must be between 68 and 65535")
        host_ip = options.get(OPT_HOST_IP, "")
        if host_ip:
            try:
                ipaddress.IPv4Address(host_ip)
            except ValueError:
                raise errors.InvalidArgument(f"invalid {OPT_HOST_IP}: {host_ip!r}") from None
        return cls(name=name, icc=_bool(options, OPT_ICC), masquerade=_bool(options, OPT_MASQ),
                   host_binding_ipv4=host_ip, mtu=mtu)


def _bool(options: dict[str, str], key: str) -> bool:
    value = options.get(key, "true").strip().lower()
    if value in ("true", "1", "yes", "on", ""):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise errors.InvalidArgument(f"invalid value for {key}: {value!r} (want true or false)")


def ensure_bridge(name: str, *, gateway: str, prefixlen: int, mtu: int, route_localnet: bool = True,
                  gateway6: str = "", prefixlen6: int = 0) -> bool:
    """Create the bridge with its gateway address (idempotent); return whether it was made.

    ``gateway6`` (an ``--ipv6`` network) is added too, without duplicate address detection so
    that it is usable at once; IPv6 is switched on for this bridge only."""
    created = False
    batch = netlink.Batch()
    if not netlink.link_exists(name):
        batch.add("link", "add", name, "mtu", mtu, "type", "bridge")
        created = True
    if created or not _has_address(name, gateway):
        batch.add("addr", "replace", f"{gateway}/{prefixlen}", "dev", name)
    try:
        if gateway6:
            if created:
                batch.run(what=f"create bridge {name}")
                batch = netlink.Batch()
            _write(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "0")
            _write(f"/proc/sys/net/ipv6/conf/{name}/accept_dad", "0")
            if not _has_address(name, gateway6, family="-6"):
                batch.add("addr", "replace", f"{gateway6}/{prefixlen6}", "dev", name, "nodad")
        batch.add("link", "set", name, "up")
        batch.run(what=f"create bridge {name}")
        if route_localnet:  # 127.0.0.1:HOSTPORT publishing (see portmap.py)
            _write(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    except BaseException:
        if created:
            netlink.delete_links([name])
        raise
    return created


def _has_address(name: str, address: str, *, family: str = "-4") -> bool:
    for link in netlink.query(family, "addr", "show", "dev", name):
        infos = link.get("addr_info")
        for info in infos if isinstance(infos, list) else []:
            if isinstance(info, dict) and info.get("local") == address:
                return True
    return False


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise errors.from_oserror(exc, f"write {path}") from exc


def delete_bridge(name: str) -> None:
    netlink.delete_links([name])


def host_veth_name(endpoint_id: str) -> str:
    return "veth" + hashlib.sha256(endpoint_id.encode()).hexdigest()[:7]


@dataclass(frozen=True)
class Endpoint:
    """One container's attachment to one bridge network."""

    id: str  # unique per (container, network)
    bridge: str
    netns: Path
    ifname: str  # eth0, eth1, ...
    address: str
    prefixlen: int
    gateway: str
    mac: str
    mtu: int = DEFAULT_MTU
    default_route: bool = True
    address6: str = ""  # on an --ipv6 network
    prefixlen6: int = 0
    gateway6: str = ""

    @property
    def host_veth(self) -> str:
        return host_veth_name(self.id)

    def host_batch(self) -> netlink.Batch:
        return (
            netlink.Batch()
            .add("link", "add", self.host_veth, "mtu", self.mtu, "type", "veth", "peer", "name", self.ifname,
                 "mtu", self.mtu, "address", self.mac, "netns", str(self.netns))
            .add("link", "set", self.host_veth, "master", self.bridge, "up")
            # a container reaching its own published port through the host's address: the
            # DNAT'ed frame leaves by the port it came in (as Docker without userland proxy)
            .add("link", "set", self.host_veth, "type", "bridge_slave", "hairpin", "on")
        )

    def inside_batch(self) -> netlink.Batch:
        b = netlink.Batch().add("link", "set", "lo", "up")
        b.add("addr", "add", f"{self.address}/{self.prefixlen}", "dev", self.ifname)
        b.add("link", "set", self.ifname, "up")
        if self.address6:  # no DAD: the address is usable at once (sysctls: ``ipv6_sysctls``)
            b.add("addr", "add", f"{self.address6}/{self.prefixlen6}", "dev", self.ifname, "nodad")
        if self.default_route and self.gateway:
            b.add("route", "replace", "default", "via", self.gateway, "dev", self.ifname)
        if self.default_route and self.address6 and self.gateway6:
            b.add("route", "replace", "default", "via", self.gateway6, "dev", self.ifname)
        return b

    def ipv6_sysctls(self) -> dict[str, str]:
        """Inside the container's namespace (never the host's): IPv6 on for this interface, no DAD."""
        if not self.address6:
            return {}
        return {f"net.ipv6.conf.{self.ifname}.disable_ipv6": "0", f"net.ipv6.conf.{self.ifname}.accept_dad": "0"}


def attach(ep: Endpoint) -> None:
    """Create the veth pair and configure the inside; nothing is left behind on failure."""
    ep.host_batch().run(what=f"create veth for {ep.ifname} on {ep.bridge}")
    try:
        sysctls = ep.ipv6_sysctls()
        if sysctls:
            with netns_entered(ep.netns):
                for key, value in sysctls.items():
                    netlink.set_sysctl(key, value)
        ep.inside_batch().run(netns=ep.netns, what=f"configure {ep.ifname} in {ep.netns}")
    except BaseException:
        netlink.delete_links([ep.host_veth])
        raise


def detach(ep: Endpoint) -> None:
    """Delete the veth pair (both ends); an already-gone pair is not an error."""
    netlink.delete_links([ep.host_veth])
