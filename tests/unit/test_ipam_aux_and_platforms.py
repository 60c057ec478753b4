"""Auxiliary addresses of a subnet (``--aux-address``) and platform strings as containerd parses them."""

from __future__ import annotations

import pytest

from sampan import errors
from sampan.image.config import parse_platform
from sampan.network import ipam


def test_aux_addresses_are_never_handed_out() -> None:
    sub = ipam.Subnet.make("10.9.0.0/29", aux={"a": "10.9.0.2", "b": "10.9.0.3"})
    assert [str(sub.allocate()) for _ in range(3)] == ["10.9.0.4", "10.9.0.5", "10.9.0.6"]
    with pytest.raises(errors.Unavailable):
        sub.allocate()
    with pytest.raises(errors.Conflict):
        ipam.Subnet.make("10.9.0.0/29", aux={"a": "10.9.0.2"}).allocate("10.9.0.2")


def test_aux_address_outside_the_subnet_is_refused() -> None:
    with pytest.raises(errors.InvalidArgument, match=r"aux-address 10\.8\.0\.1"):
        ipam.Subnet.make("10.9.0.0/24", aux={"a": "10.8.0.1"})


@pytest.mark.parametrize(("text", "want"), [("linux", ("linux", None)), ("amd64", ("linux", "amd64")),
                                            ("linux/arm64/v8", ("linux", "arm64")), ("windows/amd64", ("windows", "amd64"))])
def test_platforms(text: str, want: tuple[str, str | None]) -> None:
    got = parse_platform(text)
    assert got[0] == want[0] and (want[1] is None or got[1] == want[1])


@pytest.mark.parametrize("text", ["foobar", "foobar/amd64", "linux//v7"])
def test_bad_platforms(text: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid platform"):
        parse_platform(text)
