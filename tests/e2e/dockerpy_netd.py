"""A module-scoped sampand with a bridge of its own, for the docker-py ports that need networking.

The daemon's default bridge, its nft table and every subnet it hands out come from one
:class:`tests.conftest.Names` derived from the test module (not the test), so one daemon serves the
whole module: the default bridge is the first /26 of the names' /24, networks created without a
subnet take /28s of the second /26 (``--default-address-pool``), and the tests give explicit
subnets from the last two /26s.  ``netname_opts`` names a user network's bridge after the tag
too, so nothing outside the test's own names is ever touched.  A module imports ``api`` (this
daemon) and ``leak_check`` from here; ``networks_removed`` (autouse) removes every user
network after each test, and the module's teardown checks that no link named after the tag is
left behind.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Names
from tests.daemon_fixture import cleanup, new_daemon
from tests.integration.container_daemon import Api, import_busybox

PREDEFINED = ("bridge", "host", "none")


def module_names(request: pytest.FixtureRequest) -> Names:
    return Names(hashlib.sha256(f"{request.module.__name__}:{os.getpid()}".encode()).hexdigest()[:8])


def quarters(names: Names) -> list[ipaddress.IPv4Network]:
    """The names' /24 as four /26: default bridge, address pool, and two for explicit subnets."""
    return list(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))


_counter = iter(range(10**6))


def bridge_opt(names: Names) -> dict[str, str]:
    """``Options`` naming a new network's bridge after the names' tag (``sp-<n><tag>``)."""
    return {"com.docker.network.bridge.name": f"sp-{next(_counter) % 100}{names.tag[:8]}"}


def _links(tag: str) -> set[str]:
    return {n for n in os.listdir("/sys/class/net") if tag in n}


@pytest.fixture(scope="module")
def mod_names(request: pytest.FixtureRequest) -> Names:
    return module_names(request)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs_tar: Path, mod_names: Names) -> Iterator[Api]:
    q = quarters(mod_names)
    before = _links(mod_names.tag[:8])
    d = new_daemon(tmp_path_factory.mktemp("netd"), "--bridge", mod_names.bridge, "--nft-table", mod_names.nft_table,
                   "--bip", f"{next(q[0].hosts())}/26", "--default-address-pool", f"base={q[1]},size=28")
    try:
        d.start()
        import_busybox(d, busybox_rootfs_tar)
        a = Api(d)
        warm = a.run(["true"], host={"NetworkMode": "none"})
        a.wait(warm)
        a.call("DELETE", f"/containers/{warm}", status=204)
        yield a
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                Api(d).remove_all()
                d.request("POST", "/networks/prune")
        finally:
            cleanup(d)
    deadline = time.monotonic() + 10  # veths of unpinned namespaces go asynchronously
    while _links(mod_names.tag[:8]) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _links(mod_names.tag[:8]) - before
    assert not left, f"links left behind: {sorted(left)}"


@pytest.fixture(autouse=True)
def networks_removed(api: Api) -> Iterator[None]:
    yield
    api.remove_all()
    for n in api.call("GET", "/networks", status=200):
        if n["Name"] not in PREDEFINED:
            api.d.request("DELETE", f"/networks/{n['Id']}")


def net_ids(networks: list[Any]) -> list[str]:
    return [str(n["Id"]) for n in networks]
