"""IP address management: which subnet a network takes and which address an endpoint gets.

Vocabulary: a *pool* is a range subnets are carved from (Docker's default address pools:
172.17.0.0/16 ... 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s); a network's *subnet*
is one such block (or the user's ``--subnet``); its *gateway* is the bridge's address (the
first host unless ``--gateway``); its *range* (``--ip-range``) is where dynamic addresses
come from (the whole subnet by default); an *allocation* is one address held by an endpoint.
An ``--ipv6`` network has a second, IPv6 subnet (:class:`Subnet6`: gateway ``::1``, addresses
handed out in order from ``::2``); there is no default IPv6 pool, as in dockerd without one.

This module is pure logic: the engine's network service persists subnets and allocations in
the database (``storage/db.py``; the network layer never imports storage) and rebuilds
:class:`Subnet` objects from them at start, so allocations survive daemon restarts.

Typical use::

    taken = [existing subnets] + netlink.routed_networks()
    net = choose_subnet(DEFAULT_POOLS, taken)           # 172.17.0.0/16 unless routed
    sub = Subnet.make(str(net))                         # gateway 172.17.0.1
    ip = sub.allocate()                                 # 172.17.0.2
    sub.release(ip)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from sampan import errors

IPv4 = ipaddress.IPv4Address
Net = ipaddress.IPv4Network
IPv6 = ipaddress.IPv6Address
Net6 = ipaddress.IPv6Network
T = TypeVar("T")

NO_V6_POOL = "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network"
V6_NOT_ENABLED = "IPv6 has not been enabled for this network, but an IPv6 subnet has been provided"


@dataclass(frozen=True)
class PoolSpec:
    """A base range and the prefix length of the subnets carved from it."""

    base: Net
    size: int

    def subnets(self) -> Iterator[Net]:
        return self.base.subnets(new_prefix=self.size) if self.size > self.base.prefixlen else iter([self.base])


DEFAULT_POOLS: tuple[PoolSpec, ...] = (
    PoolSpec(Net("172.17.0.0/16"), 16), PoolSpec(Net("172.18.0.0/16"), 16),
    PoolSpec(Net("172.19.0.0/16"), 16), PoolSpec(Net("172.20.0.0/14"), 16),
    PoolSpec(Net("172.24.0.0/14"), 16), PoolSpec(Net("172.28.0.0/14"), 16),
    PoolSpec(Net("192.168.0.0/16"), 20),
)


def parse_pool(text: str) -> PoolSpec:
    """``base=10.10.0.0/16,size=24`` (dockerd's --default-address-pool)."""
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    try:
        base = Net(fields["base"], strict=False)
        size = int(fields.get("size", str(base.prefixlen)))
    except (KeyError, ValueError) as exc:
        raise errors.InvalidArgument(f"invalid default address pool {text!r}: want base=CIDR,size=N") from exc
    if not base.prefixlen <= size <= 30:
        raise errors.InvalidArgument(f"invalid default address pool {text!r}: size {size} out of range")
    return PoolSpec(base, size)


def _parsed(text: str, what: str, kind: type[T], parse: Callable[[str], object], noun: str) -> T:
    """``parse(text)`` as ``kind`` (one address family), or an error naming ``what``."""
    try:
        value = parse(text)
    except ValueError:
        raise errors.InvalidArgument(f"invalid {what}: {text!r} is not {'a CIDR' if noun == 'CIDR' else 'an address'}") from None
    if not isinstance(value, kind):
        family = "IPv6" if kind in (Net6, IPv6) else "IPv4"
        raise errors.InvalidArgument(f"invalid {what}: {text!r} is not an {family} {noun}")
    return value


def _network(text: str) -> object:
    return ipaddress.ip_network(text, strict=False)


def parse_network(text: str, what: str = "subnet") -> Net:
    return _parsed(text, what, Net, _network, "CIDR")


def parse_address(text: str, what: str = "address") -> IPv4:
    return _parsed(text, what, IPv4, ipaddress.ip_address, "address")


def is_ipv6(text: str) -> bool:
    """Whether a CIDR or address is IPv6 (a quick look; parsing checks the rest)."""
    return ":" in text


def parse_network6(text: str, what: str = "subnet") -> Net6:
    return _parsed(text, what, Net6, _network, "CIDR")


def parse_address6(text: str, what: str = "address") -> IPv6:
    return _parsed(text, what, IPv6, ipaddress.ip_address, "address")


def choose_subnet(pools: Iterable[PoolSpec], taken: Iterable[Net]) -> Net:
    """The first subnet of the pools that overlaps nothing in ``taken``."""
    used = list(taken)
    for pool in pools:
        for net in pool.subnets():
            if not any(net.overlaps(t) for t in used):
                return net
    raise errors.Unavailable(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )


def check_no_overlap(net: Net | Net6, taken: Iterable[tuple[str, Net | Net6]]) -> None:
    for name, other in taken:
        if net.version == other.version and net.overlaps(other):  # type: ignore[arg-type]
            raise errors.Conflict(f"Pool overlaps with other one on this address space ({name} uses {other})")


@dataclass
class Subnet:
    """One network's subnet with its gateway, dynamic range and allocations."""

    network: Net
    gateway: IPv4
    ip_range: Net
    allocated: set[IPv4] = field(default_factory=set)
    reserved: set[IPv4] = field(default_factory=set)  # auxiliary addresses (``--aux-address``): never handed out

    @classmethod
    def make(cls, subnet: str, *, gateway: str = "", ip_range: str = "", aux: dict[str, str] | None = None) -> Subnet:
        net = parse_network(subnet)
        if net.prefixlen > 30:
            raise errors.InvalidArgument(f"subnet {net} is too small (at most /30)")
        gw = parse_address(gateway, "gateway") if gateway else next(net.hosts())
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise errors.InvalidArgument(f"no matching subnet for gateway {gw}")
        rng = parse_network(ip_range, "ip-range") if ip_range else net
        if not rng.subnet_of(net):
            raise errors.InvalidArgument(f"no matching subnet for range {rng}")
        reserved = set()
        for name, text in (aux or {}).items():
            addr = parse_address(text, f"auxiliary address {name!r}")
            if addr not in net:
                raise errors.InvalidArgument(f"no matching subnet for aux-address {addr}")
            reserved.add(addr)
        return cls(net, gw, rng, reserved=reserved)

    def _usable(self, addr: IPv4) -> bool:
        return addr not in (self.network.network_address, self.network.broadcast_address, self.gateway) \
            and addr not in self.reserved

    def allocate(self, requested: str = "") -> IPv4:
        """Take ``requested`` (``--ip``) or the lowest free address of the range."""
        if requested:
            addr = parse_address(requested, "IP address")
            if addr not in self.network:
                raise errors.InvalidArgument(f"invalid address {addr}: it does not belong to the network's subnet {self.network}")
            if not self._usable(addr) or addr in self.allocated:
                raise errors.Conflict(f"Address already in use: {addr}")
            self.allocated.add(addr)
            return addr
        for addr in self.ip_range:
            if self._usable(addr) and addr not in self.allocated:
                self.allocated.add(addr)
                return addr
        raise errors.Unavailable(f"no available IPv4 addresses on this network's address pools ({self.ip_range})")

    def release(self, addr: IPv4 | str) -> None:
        self.allocated.discard(IPv4(addr) if isinstance(addr, str) else addr)


@dataclass
class Subnet6:
    """One network's IPv6 subnet (``--ipv6 --subnet fd..::/64``): gateway ``::1`` unless
    ``--gateway``, addresses handed out in order from ``::2`` (Docker's sequential allocator)."""

    network: Net6
    gateway: IPv6
    ip_range: Net6
    allocated: set[IPv6] = field(default_factory=set)
    reserved: set[IPv6] = field(default_factory=set)

    @classmethod
    def make(cls, subnet: str, *, gateway: str = "", ip_range: str = "", aux: dict[str, str] | None = None) -> Subnet6:
        net = parse_network6(subnet)
        if net.prefixlen > 126:
            raise errors.InvalidArgument(f"subnet {net} is too small (at most /126)")
        gw = parse_address6(gateway, "gateway") if gateway else net.network_address + 1
        if gw not in net or gw == net.network_address:
            raise errors.InvalidArgument(f"no matching subnet for gateway {gw}")
        rng = parse_network6(ip_range, "ip-range") if ip_range else net
        if not rng.subnet_of(net):
            raise errors.InvalidArgument(f"no matching subnet for range {rng}")
        reserved = set()
        for name, text in (aux or {}).items():
            addr = parse_address6(text, f"auxiliary address {name!r}")
            if addr not in net:
                raise errors.InvalidArgument(f"no matching subnet for aux-address {addr}")
            reserved.add(addr)
        return cls(net, gw, rng, reserved=reserved)

    def _usable(self, addr: IPv6) -> bool:
        return addr not in (self.network.network_address, self.gateway) and addr not in self.reserved

    def allocate(self, requested: str = "") -> IPv6:
        """Take ``requested`` (``--ip6``) or the lowest free address of the range."""
        if requested:
            addr = parse_address6(requested, "IPv6 address")
            if addr not in self.network:
                raise errors.InvalidArgument(f"invalid address {addr}: it does not belong to the network's subnet {self.network}")
            if not self._usable(addr) or addr in self.allocated:
                raise errors.Conflict(f"Address already in use: {addr}")
            self.allocated.add(addr)
            return addr
        addr = self.ip_range.network_address
        last = self.ip_range.broadcast_address
        while addr <= last:  # the lowest free one: the allocated set is small, a /64 is not
            if self._usable(addr) and addr not in self.allocated:
                self.allocated.add(addr)
                return addr
            if addr == last:
                break
            addr += 1
        raise errors.Unavailable(f"no available IPv6 addresses on this network's address pools ({self.ip_range})")

    def release(self, addr: IPv6 | str) -> None:
        self.allocated.discard(IPv6(addr) if isinstance(addr, str) else addr)


def mac_for(addr: IPv4) -> str:
    """Docker's MAC derived from the address: 02:42 followed by its four bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)


def check_mac(text: str) -> str:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        raise errors.InvalidArgument(f"invalid MAC address: {text!r}")
    if int(parts[0], 16) & 1:
        raise errors.InvalidArgument(f"invalid MAC address: {text!r} is a multicast address")
    return text.lower()
