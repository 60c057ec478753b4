"""Overlay specifics: 200-layer images, short links, driver selection."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sampan.errors import InvalidArgument
from sampan.storage.archive import apply_layer
from sampan.storage.native import NativeSnapshotter
from sampan.storage.overlay import OverlaySnapshotter
from sampan.storage.select import open_snapshotter, overlay_supported
from sampan.storage.testing import build_tar, mounted

pytestmark = pytest.mark.root


def test_image_of_200_layers_mounts(tmp_path: Path) -> None:
    sn = OverlaySnapshotter(tmp_path / "layers")
    parent = None
    for i in range(200):
        spec: dict[str, bytes | str | None] = {f"f{i:03}": f"layer {i}".encode()}
        if i == 0:
            spec["bottom"] = b"from the bottom layer"
        if i == 100:
            spec[".wh.f050"] = b""
        name = f"sha256:{i:064x}"
        key = f"extract-{name}"
        sn.prepare(key, parent)
        apply_layer(io.BytesIO(build_tar(spec)), sn.upper_dir(key), whiteouts="overlay")
        sn.commit(name, key)
        parent = name
    mounts = sn.prepare("container", parent)
    [m] = mounts
    lowerdir = next(o for o in m.options if o.startswith("lowerdir="))
    assert lowerdir.count(":") == 199
    assert len(",".join(m.options)) > 4096  # past mount(2)'s one page: the new mount API is used
    with mounted(mounts, tmp_path / "merged") as root:
        assert (root / "bottom").read_bytes() == b"from the bottom layer"
        assert (root / "f199").read_bytes() == b"layer 199"
        assert (root / "f049").exists() and not (root / "f050").exists()
        (root / "new").write_bytes(b"upper")
        assert len(os.listdir(root)) == 201  # 200 files + bottom + new - the whited-out one
    assert (sn.upper_dir("container") / "new").read_bytes() == b"upper"
    with mounted(sn.view("look", parent), tmp_path / "view") as root:
        assert (root / "bottom").exists() and not (root / "f050").exists()


def test_short_links_point_at_committed_layers(tmp_path: Path) -> None:
    sn = OverlaySnapshotter(tmp_path / "layers")
    sn.prepare("k")
    sn.commit("c", "k")
    links = os.listdir(tmp_path / "layers" / "l")
    assert len(links) == 1 and len(links[0]) == 26
    assert os.path.realpath(tmp_path / "layers" / "l" / links[0]) == str(sn.upper_dir("c"))
    sn.remove("c")
    assert os.listdir(tmp_path / "layers" / "l") == []


def test_driver_selection(tmp_path: Path) -> None:
    assert overlay_supported(tmp_path / "layers")
    assert isinstance(open_snapshotter(tmp_path / "layers"), OverlaySnapshotter)
    assert isinstance(open_snapshotter(tmp_path / "n", "native"), NativeSnapshotter)
    with pytest.raises(InvalidArgument, match="devicemapper"):
        open_snapshotter(tmp_path / "x", "devicemapper")
    assert not [p for p in (tmp_path / "layers").iterdir() if p.name.startswith(".probe")]
