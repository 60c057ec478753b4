"""The snapshotter conformance suite's metadata checks, for both implementations (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampan.storage import testing
from sampan.storage.native import NativeSnapshotter
from sampan.storage.overlay import OverlaySnapshotter


@pytest.mark.parametrize("check", testing.METADATA_CHECKS, ids=testing.check_id)
@pytest.mark.parametrize(
    "factory", [OverlaySnapshotter, NativeSnapshotter], ids=["overlay", "native"]
)
def test_snapshotter_metadata(
    factory: testing.Factory, check: testing.Check, tmp_path: Path
) -> None:
    check(factory, tmp_path)
