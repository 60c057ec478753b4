"""The snapshotter conformance suite's mount checks (real overlay and bind mounts), both drivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampan.storage import testing
from sampan.storage.native import NativeSnapshotter
from sampan.storage.overlay import OverlaySnapshotter

pytestmark = pytest.mark.root


@pytest.mark.parametrize("check", testing.MOUNT_CHECKS, ids=testing.check_id)
@pytest.mark.parametrize(
    "factory", [OverlaySnapshotter, NativeSnapshotter], ids=["overlay", "native"]
)
def test_snapshotter_mounts(factory: testing.Factory, check: testing.Check, tmp_path: Path) -> None:
    check(factory, tmp_path)
