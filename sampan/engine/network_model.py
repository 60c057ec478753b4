"""The network service's data: networks, endpoints, published ports, and their tables."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sampan.network import ipam
from sampan.network.bridge import DEFAULT_BRIDGE, DEFAULT_MTU

#: the networks every daemon has: (name, driver)
PREDEFINED = (("bridge", "bridge"), ("host", "host"), ("none", "null"))

MIGRATIONS = [
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        driver TEXT NOT NULL,
        created TEXT NOT NULL,
        internal INTEGER NOT NULL DEFAULT 0,
        attachable INTEGER NOT NULL DEFAULT 0,
        labels TEXT NOT NULL,
        options TEXT NOT NULL,
        ipam TEXT NOT NULL,
        bridge TEXT NOT NULL
    );
    CREATE TABLE endpoints (
        id TEXT PRIMARY KEY,
        network_id TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL,
        container_name TEXT NOT NULL,
        address TEXT NOT NULL,
        prefixlen INTEGER NOT NULL,
        gateway TEXT NOT NULL,
        mac TEXT NOT NULL,
        aliases TEXT NOT NULL,
        ifname TEXT NOT NULL,
        netns TEXT NOT NULL,
        ports TEXT NOT NULL,
        UNIQUE (network_id, container_id)
    );
    """,
    # IPAM.Options as the create request had them ('null': none given, shown as null as dockerd does)
    "ALTER TABLE networks ADD COLUMN ipam_options TEXT NOT NULL DEFAULT '{}';",
    # an endpoint's IPv6 address on an --ipv6 network ('' otherwise)
    """
    ALTER TABLE endpoints ADD COLUMN address6 TEXT NOT NULL DEFAULT '';
    ALTER TABLE endpoints ADD COLUMN prefixlen6 INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE endpoints ADD COLUMN gateway6 TEXT NOT NULL DEFAULT '';
    """,
]


@dataclass
class NetworkConfig:
    """The daemon's networking settings (``daemon/config.py`` fills these from its flags)."""

    exec_root: Path
    bridge_name: str = DEFAULT_BRIDGE  # --bridge (``none``: no default bridge)
    bip: str = ""  # --bip, e.g. 172.17.0.1/16
    ipv6: bool = False  # --ipv6: the default bridge gets ``fixed_cidr_v6`` too
    fixed_cidr_v6: str = ""  # --fixed-cidr-v6
    default_pools: tuple[ipam.PoolSpec, ...] = ipam.DEFAULT_POOLS  # --default-address-pool
    nft: bool = True  # --nft=false: no rules at all (userland proxy for published ports)
    nft_table: str = "sampan"  # --nft-table
    mtu: int = DEFAULT_MTU
    resolv_conf: Path = Path("/etc/resolv.conf")
    dns_upstreams: tuple[str, ...] = ()  # default: the nameservers of resolv_conf
    dns_upstream_port: int = 53

    @property
    def bridge_enabled(self) -> bool:
        return self.bridge_name != "none"


@dataclass
class IpamConfig:
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    aux_addresses: dict[str, str] = field(default_factory=dict)  # name -> address, reserved


@dataclass(frozen=True)
class PortBinding:
    """A published port: ``host_ip:host_port`` -> ``container_port/proto``."""

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0  # 0: a random free port (chosen at setup)
    host_port_end: int = 0  # a host range host_port..host_port_end: its first free port (chosen at setup)


@dataclass
class EndpointInfo:
    id: str
    network_id: str
    container_id: str
    container_name: str
    address: str
    prefixlen: int
    gateway: str
    mac: str
    aliases: list[str] = field(default_factory=list)
    ifname: str = "eth0"
    netns: str = ""
    ports: list[PortBinding] = field(default_factory=list)
    address6: str = ""  # on an --ipv6 network: the endpoint's IPv6 address, prefix length, gateway
    prefixlen6: int = 0
    gateway6: str = ""


@dataclass
class Network:
    id: str
    name: str
    driver: str
    created: str
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    ipam: list[IpamConfig] = field(default_factory=list)
    ipam_options: dict[str, str] | None = field(default_factory=dict)
    bridge: str = ""
    scope: str = "local"
    containers: dict[str, EndpointInfo] = field(default_factory=dict)

    @property
    def ipam4(self) -> IpamConfig | None:
        """The IPv4 subnet's config (every bridge network has one)."""
        return next((c for c in self.ipam if c.subnet and not ipam.is_ipv6(c.subnet)), None)

    @property
    def ipam6(self) -> IpamConfig | None:
        """The IPv6 subnet's config: only on an ``--ipv6`` network."""
        return next((c for c in self.ipam if ipam.is_ipv6(c.subnet)), None)

    @property
    def enable_ipv6(self) -> bool:
        return self.ipam6 is not None


def network_from_row(r: sqlite3.Row) -> Network:
    return Network(
        id=str(r["id"]), name=str(r["name"]), driver=str(r["driver"]), created=str(r["created"]),
        internal=bool(r["internal"]), attachable=bool(r["attachable"]), labels=json.loads(r["labels"]),
        options=json.loads(r["options"]), ipam=[IpamConfig(**c) for c in json.loads(r["ipam"])],
        ipam_options=json.loads(r["ipam_options"]),
        bridge=str(r["bridge"]),
    )


def endpoint_from_row(r: sqlite3.Row) -> EndpointInfo:
    return EndpointInfo(
        id=str(r["id"]), network_id=str(r["network_id"]), container_id=str(r["container_id"]),
        container_name=str(r["container_name"]), address=str(r["address"]), prefixlen=int(r["prefixlen"]),
        gateway=str(r["gateway"]), mac=str(r["mac"]), aliases=list(json.loads(r["aliases"])),
        ifname=str(r["ifname"]), netns=str(r["netns"]),
        ports=[PortBinding(**p) for p in json.loads(r["ports"])],
        address6=str(r["address6"]), prefixlen6=int(r["prefixlen6"]), gateway6=str(r["gateway6"]),
    )


def ports_json(ports: list[PortBinding]) -> str:
    return json.dumps([p.__dict__ for p in ports])
