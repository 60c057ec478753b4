"""RUN steps on the default bridge network, as Docker's builder runs them: a step gets its own
network namespace with an endpoint on the bridge, and reaches the outside through NAT.

* a busybox step sees ``eth0`` with an address in the bridge's subnet and a default route via
  the bridge's gateway, and reaches a server the test runs on that gateway address;
* a Debian step installs python3 with apt-get from the machine's configured Debian mirror
  through the bridge and NAT (the one kind of traffic allowed to leave the machine);
* ``--network host`` and ``none`` still choose otherwise, and nothing of the steps' endpoints
  is left behind.
"""

from __future__ import annotations

import http.server
import io
import ipaddress
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, cleanup, new_daemon
from tests.integration.container_daemon import import_busybox
from tests.integration.network_leaks import leak_check  # noqa: F401 - scoped to this test's names

pytestmark = [pytest.mark.root, pytest.mark.timeout(900)]


@pytest.fixture
def bridged(tmp_path: Path, names, busybox_rootfs_tar: Path) -> Iterator[tuple[Daemon, str]]:  # type: ignore[no-untyped-def]
    net = next(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))
    gateway = str(next(net.hosts()))
    d = new_daemon(tmp_path, "--bridge", names.bridge, "--nft-table", names.nft_table, "--bip", f"{gateway}/26")
    try:
        d.start()
        import_busybox(d, busybox_rootfs_tar)
        yield d, gateway
    finally:
        cleanup(d)


def _build(d: Daemon, dockerfile: str, tag: str, *extra: str) -> subprocess.CompletedProcess[str]:
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return subprocess.run(
        [sys.executable, "-m", "sampan.cli", "-H", d.url, "build", "-t", tag, *extra, "-"],
        input=ctx.getvalue().decode("latin-1"), capture_output=True, text=True, timeout=800,
    )


def test_run_step_is_on_the_bridge_and_reaches_the_gateway(bridged: tuple[Daemon, str]) -> None:
    d, gateway = bridged

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"from the host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    # the bridge (and so its gateway address) appears with its first endpoint: listen on all
    # addresses; the step connects to the gateway one
    server = http.server.HTTPServer(("0.0.0.0", 0), Page)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        r = _build(d, "FROM busybox\n"
                      "RUN ip -4 addr show eth0 > /addr && ip route > /route"
                      f" && wget -q -O /page http://{gateway}:{port}/\n", "bridged:1")
        assert r.returncode == 0, r.stdout + r.stderr
        out = subprocess.run([sys.executable, "-m", "sampan.cli", "-H", d.url, "run", "--rm", "--network", "none",
                              "bridged:1", "cat", "/addr", "/route", "/page"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert f"default via {gateway}" in out.stdout
        subnet = ipaddress.IPv4Network(f"{gateway}/26", strict=False)
        addrs = [w.split("/")[0] for line in out.stdout.splitlines() if "inet " in line for w in line.split()[1:2]]
        assert addrs and ipaddress.IPv4Address(addrs[0]) in subnet
        assert "from the host" in out.stdout
        # host and none still choose otherwise
        r = _build(d, "FROM busybox\nRUN ! ip -4 addr show eth0\n", "bridged:none", "--network", "none")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        server.shutdown()
        server.server_close()
    # every step's endpoint went away with its step
    assert not [p for p in Path("/sys/class/net").iterdir() if p.name.startswith("veth")
                and (p / "master").exists() and (p / "master").resolve().name == d.args()[d.args().index("--bridge") + 1]]


@pytest.mark.slow
def test_apt_get_through_the_bridge_and_nat(bridged: tuple[Daemon, str], debian_rootfs_tar: Path) -> None:
    d, _ = bridged
    r = subprocess.run([sys.executable, "-m", "sampan.cli", "-H", d.url, "import", "-c", 'CMD ["bash"]',
                        str(debian_rootfs_tar), "debian:bookworm"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = _build(d, "FROM debian:bookworm\n"
                  "RUN apt-get update && apt-get install -y --no-install-recommends python3"
                  " && rm -rf /var/lib/apt/lists/*\n"
                  "RUN python3 -c 'print(6 * 7)' > /answer\n", "py-bridged:1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "Setting up python3 " in r.stdout
    out = subprocess.run([sys.executable, "-m", "sampan.cli", "-H", d.url, "run", "--rm", "--network", "none",
                          "py-bridged:1", "cat", "/answer"], capture_output=True, text=True)
    assert out.stdout == "42\n", out.stderr
