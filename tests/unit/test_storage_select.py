"""Driver selection without mounting: the probe's answer decides (the probe itself is an integration test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampan.errors import InvalidArgument, Unavailable
from sampan.storage import select
from sampan.storage.native import NativeSnapshotter
from sampan.storage.overlay import OverlaySnapshotter


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    answer = [True]
    calls: list[Path] = []

    def fake(root: Path) -> bool:
        calls.append(root)
        return answer[0]

    monkeypatch.setattr(select, "_probe", fake)
    monkeypatch.setattr(select, "_cache", {})
    return answer


def test_auto_picks_overlay_when_it_works(probe: list[bool], tmp_path: Path) -> None:
    sn = select.open_snapshotter(tmp_path / "layers")
    assert isinstance(sn, OverlaySnapshotter) and sn.name == "overlay"


def test_auto_falls_back_to_native(probe: list[bool], tmp_path: Path) -> None:
    probe[0] = False
    sn = select.open_snapshotter(tmp_path / "layers")
    assert isinstance(sn, NativeSnapshotter) and sn.whiteouts == "delete"


def test_overlay_asked_but_unsupported(probe: list[bool], tmp_path: Path) -> None:
    probe[0] = False
    with pytest.raises(Unavailable, match="overlay"):
        select.open_snapshotter(tmp_path / "layers", "overlay")


def test_probe_result_is_cached_per_root(probe: list[bool], tmp_path: Path) -> None:
    assert select.overlay_supported(tmp_path)
    probe[0] = False
    assert select.overlay_supported(tmp_path)  # cached
    assert not select.overlay_supported(tmp_path / "other")


def test_unknown_driver(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="aufs"):
        select.open_snapshotter(tmp_path, "aufs")
