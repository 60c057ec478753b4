"""Published-port requests from Docker's PortBindings (ranges, -P, bad input)."""

from __future__ import annotations

import pytest

from sampan import errors
from sampan.engine.container_network import port_requests
from sampan.engine.model import HostSpec
from sampan.engine.network_model import PortBinding


def test_bindings_ranges_and_publish_all() -> None:
    host = HostSpec(port_bindings={
        "80-82/tcp": [{"HostIp": "", "HostPort": "8000-8002"}],
        "90/tcp": [{"HostIp": "", "HostPort": "9000-9005"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
    }, publish_all_ports=True)
    got = port_requests(host, ["80-82/tcp", "90/tcp", "53/udp", "443/tcp"])
    assert got == [
        PortBinding(53, "udp", "127.0.0.1", 0),
        PortBinding(80, "tcp", "", 8000), PortBinding(81, "tcp", "", 8001), PortBinding(82, "tcp", "", 8002),
        PortBinding(90, "tcp", "", 9000),
        PortBinding(443, "tcp", "", 0),
    ]


@pytest.mark.parametrize("bindings", [
    {"80/tcp": [{"HostPort": "http"}]},
    {"80/xyz": [{"HostPort": "1"}]},
    {"80-81/tcp": [{"HostPort": "8000-8005"}]},
    {"0/tcp": [{"HostPort": "1"}]},
    {"80/tcp": [{"HostPort": "70000"}]},
])
def test_bad_bindings_are_refused(bindings: dict[str, list[dict[str, str]]]) -> None:
    with pytest.raises(errors.InvalidArgument):
        port_requests(HostSpec(port_bindings=bindings), [])
