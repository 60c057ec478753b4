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
        PortBinding(90, "tcp", "", 9000, 9005),
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


def test_a_host_range_takes_its_first_free_port() -> None:
    import socket

    from sampan.engine.network_sandbox import free_port_in

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        assert free_port_in("tcp", "127.0.0.1", range(busy, busy + 3), {busy + 1}) == busy + 2
        with pytest.raises(errors.Conflict, match=f"127.0.0.1:{busy}-{busy + 1} failed: all ports are allocated"):
            free_port_in("tcp", "127.0.0.1", range(busy, busy + 2), {busy + 1})
