"""A Debian-based build that installs python3 with apt-get from the machine's configured
Debian mirror (the one kind of traffic allowed to leave the machine), with the builder driven
in-process: with no daemon to give a bridge endpoint, RUN steps use the host's network
namespace (``build/runtime_backend.py``); ``test_build_bridge.py`` does the same through the
daemon's bridge and NAT."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.build_support import open_lab

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(900)]


def test_apt_get_install_python3(tmp_path: Path, debian_rootfs_tar: Path) -> None:
    lab = open_lab(tmp_path / "data", None)
    try:
        with open(debian_rootfs_tar, "rb") as f:
            lab.store.import_rootfs(f, reference="debian:bookworm", changes=['CMD ["bash"]'])
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        lab.build(ctx, "FROM debian:bookworm\n"
                       "RUN apt-get update && apt-get install -y --no-install-recommends python3"
                       " && rm -rf /var/lib/apt/lists/*\n"
                       "RUN python3 -c 'print(6 * 7)' > /answer\n", tags=["py:1"])
        assert "Setting up python3 " in lab.text
        image = lab.store.get("py:1")
        assert len(image.layers) == 3
        with lab.store.content.open(image.layers[-1].blob) as f:
            import tarfile

            with tarfile.open(fileobj=f) as tar:
                member = tar.extractfile("answer")
                assert member is not None and member.read() == b"42\n"
    finally:
        lab.close()
