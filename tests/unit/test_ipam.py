"""IPAM: pool choice, subnets, allocation, MACs (pure logic)."""

from __future__ import annotations

import ipaddress

import pytest

from sampan import errors
from sampan.network import ipam

Net = ipaddress.IPv4Network


def test_default_pools_are_dockers() -> None:
    subnets = [str(n) for p in ipam.DEFAULT_POOLS for n in p.subnets()]
    assert subnets[:15] == [f"172.{i}.0.0/16" for i in range(17, 32)]
    assert subnets[15:17] == ["192.168.0.0/20", "192.168.16.0/20"]
    assert len(subnets) == 15 + 16


def test_default_bridge_takes_172_17_unless_routed() -> None:
    assert str(ipam.choose_subnet(ipam.DEFAULT_POOLS, [])) == "172.17.0.0/16"
    routed = [Net("172.17.0.0/16"), Net("172.18.5.0/24")]
    assert str(ipam.choose_subnet(ipam.DEFAULT_POOLS, routed)) == "172.19.0.0/16"
    everything = [Net("172.16.0.0/12"), Net("192.168.0.0/16")]
    with pytest.raises(errors.Unavailable, match="non-overlapping"):
        ipam.choose_subnet(ipam.DEFAULT_POOLS, everything)


def test_parse_pool() -> None:
    pool = ipam.parse_pool("base=10.10.0.0/16,size=24")
    assert str(next(pool.subnets())) == "10.10.0.0/24"
    for bad in ("size=24", "base=10.0.0.0/16,size=8", "base=nope,size=24"):
        with pytest.raises(errors.InvalidArgument):
            ipam.parse_pool(bad)


def test_subnet_allocation_skips_gateway_and_reuses_released() -> None:
    sub = ipam.Subnet.make("10.5.0.0/29")
    assert str(sub.gateway) == "10.5.0.1"
    got = [str(sub.allocate()) for _ in range(5)]
    assert got == ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
    with pytest.raises(errors.Unavailable):
        sub.allocate()
    sub.release("10.5.0.4")
    assert str(sub.allocate()) == "10.5.0.4"


def test_requested_address_gateway_and_range() -> None:
    sub = ipam.Subnet.make("10.6.0.0/24", gateway="10.6.0.254", ip_range="10.6.0.128/25")
    assert str(sub.allocate()) == "10.6.0.128"
    assert str(sub.allocate("10.6.0.7")) == "10.6.0.7"  # --ip may be outside the range, inside the subnet
    with pytest.raises(errors.Conflict, match="already in use"):
        sub.allocate("10.6.0.7")
    with pytest.raises(errors.Conflict):
        sub.allocate("10.6.0.254")  # the gateway
    with pytest.raises(errors.InvalidArgument, match="does not belong"):
        sub.allocate("10.7.0.1")
    with pytest.raises(errors.InvalidArgument, match="gateway"):
        ipam.Subnet.make("10.6.0.0/24", gateway="10.9.0.1")
    with pytest.raises(errors.InvalidArgument, match="range"):
        ipam.Subnet.make("10.6.0.0/24", ip_range="10.6.1.0/25")
    with pytest.raises(errors.InvalidArgument, match="invalid subnet"):
        ipam.Subnet.make("10.6.0.300/24")
    with pytest.raises(errors.InvalidArgument, match="'fd00::/64' is not an IPv4 CIDR"):
        ipam.Subnet.make("fd00::/64")
    with pytest.raises(errors.InvalidArgument, match=r"'10\.0\.0\.1' is not an IPv6 address"):
        ipam.parse_address6("10.0.0.1")


def test_overlap_check_names_the_other_network() -> None:
    with pytest.raises(errors.Conflict, match=r"web uses 10\.1\.0\.0/16"):
        ipam.check_no_overlap(Net("10.1.2.0/24"), [("web", Net("10.1.0.0/16"))])
    ipam.check_no_overlap(Net("10.2.0.0/24"), [("web", Net("10.1.0.0/16"))])


def test_mac_from_address_and_checked_macs() -> None:
    assert ipam.mac_for(ipaddress.IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"
    assert ipam.check_mac("02:42:AC:11:00:99") == "02:42:ac:11:00:99"
    for bad in ("02:42:ac:11:00", "zz:42:ac:11:00:02", "01:00:5e:00:00:01"):
        with pytest.raises(errors.InvalidArgument):
            ipam.check_mac(bad)
