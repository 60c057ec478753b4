"""apply_layer / write_tree / write_diff on a real filesystem (as root: ownership, devices, xattrs)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
from pathlib import Path

import pytest

from sampan.errors import InvalidArgument
from sampan.storage import compression
from sampan.storage.archive import apply_layer, write_tree
from sampan.storage.testing import build_tar, tree_state

pytestmark = pytest.mark.root


def _compress(data: bytes, kind: str) -> bytes:
    out = io.BytesIO()
    w = compression.compressing_writer(out, kind)
    w.write(data)
    w.close()
    return out.getvalue()


def test_busybox_round_trip(busybox_rootfs_tar: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with open(busybox_rootfs_tar, "rb") as f:
        applied = apply_layer(f, a, whiteouts="overlay", where="busybox")
    assert applied.size == busybox_rootfs_tar.stat().st_size
    buf = io.BytesIO()
    written = write_tree(a, buf)
    buf.seek(0)
    assert apply_layer(buf, b, whiteouts="overlay") == written
    assert tree_state(a) == tree_state(b)
    assert os.path.islink(b / "bin" / "sh")


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressed_layers_have_the_plain_diff_id(kind: str, tmp_path: Path) -> None:
    plain = build_tar({"etc/": None, "etc/f": os.urandom(300_000)})
    (tmp_path / "p").mkdir()
    (tmp_path / "c").mkdir()
    want = apply_layer(io.BytesIO(plain), tmp_path / "p", whiteouts="overlay")
    got = apply_layer(
        io.BytesIO(_compress(plain, kind)),
        tmp_path / "c",
        whiteouts="overlay",
        expected_diff_id=want.diff_id,
    )
    assert got == want
    assert tree_state(tmp_path / "p") == tree_state(tmp_path / "c")


class _Pipe(io.RawIOBase):
    """A stream that cannot peek (like a socket or a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(memoryview(b)[:1000])


def test_auto_detection_on_a_stream_that_cannot_peek(tmp_path: Path) -> None:
    tar = build_tar({"x": b"data"})
    got = apply_layer(_Pipe(_compress(tar, "gzip")), tmp_path, whiteouts="overlay")  # type: ignore[arg-type]
    assert (tmp_path / "x").read_bytes() == b"data" and got.size == len(tar)


def test_overlay_form_of_whiteouts(tmp_path: Path) -> None:
    tar = build_tar({".wh.gone": b"", "d/": None, "d/.wh..wh..opq": b"", "d/kept": b"k"})
    apply_layer(io.BytesIO(tar), tmp_path, whiteouts="overlay")
    st = os.lstat(tmp_path / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(tmp_path / "d", "trusted.overlay.opaque") == b"y"
    assert (tmp_path / "d" / "kept").read_bytes() == b"k"


@pytest.mark.parametrize("marker_first", [True, False])
def test_delete_form_of_opaque_keeps_this_layers_files(tmp_path: Path, marker_first: bool) -> None:
    (tmp_path / "d" / "old" / "deep").mkdir(parents=True)
    (tmp_path / "d" / "old-file").write_bytes(b"old")
    (tmp_path / "d" / "sub").mkdir()
    (tmp_path / "d" / "sub" / "older").write_bytes(b"old")
    (tmp_path / "gone").write_bytes(b"gone")
    spec: dict[str, bytes | str | None] = {
        "d/": None,
        "d/new": b"new",
        "d/sub/": None,
        "d/sub/n2": b"2",
    }
    if marker_first:
        spec = {"d/": None, "d/.wh..wh..opq": b"", **spec}
    else:
        spec["d/.wh..wh..opq"] = b""
    spec[".wh.gone"] = b""
    apply_layer(io.BytesIO(build_tar(spec)), tmp_path, whiteouts="delete")
    got = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert got == ["d", "d/new", "d/sub", "d/sub/n2"], got


def test_directory_times_and_modes_survive_children(tmp_path: Path) -> None:
    tar = build_tar({"d/": None, "d/f": b"x"}, mtime=1_234_567_890)
    apply_layer(io.BytesIO(tar), tmp_path, whiteouts="overlay")
    assert int(os.stat(tmp_path / "d").st_mtime) == 1_234_567_890
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o755


def test_same_tree_as_gnu_tar(busybox_rootfs_tar: Path, tmp_path: Path) -> None:
    ours, gnu = tmp_path / "ours", tmp_path / "gnu"
    ours.mkdir()
    gnu.mkdir()
    src = tmp_path / "src"
    (src / ("long" * 40)).mkdir(parents=True)
    (src / ("long" * 40) / ("name" * 40)).write_bytes(b"long names")
    os.link(src / ("long" * 40) / ("name" * 40), src / "hardlink")
    os.symlink("long" * 40, src / "dirlink")
    os.chmod(src / "hardlink", 0o2751)
    for fmt in ("gnu", "pax"):
        layer = tmp_path / f"{fmt}.tar"
        subprocess.run(
            ["tar", f"--format={fmt}", "-C", str(src), "-cf", str(layer), "."], check=True
        )
        for layer_file in (busybox_rootfs_tar, layer):
            with open(layer_file, "rb") as f:
                apply_layer(f, ours, whiteouts="overlay")
            subprocess.run(
                ["tar", "-x", "-p", "--numeric-owner", "-C", str(gnu), "-f", str(layer_file)],
                check=True,
            )
        assert tree_state(ours) == tree_state(gnu)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_corrupt_compressed_layer_names_the_layer(kind: str, tmp_path: Path) -> None:
    """A corrupt stream is refused by the decompressor (gzip's CRC, zstd's checksum when the
    writer put one) or, failing that, by the diff_id check: either way naming the layer."""
    tar = build_tar({"f": os.urandom(2 << 20)})
    (tmp_path / "ok").mkdir()
    good = apply_layer(io.BytesIO(tar), tmp_path / "ok", whiteouts="overlay")
    blob = bytearray(_compress(tar, kind))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\xff" * 64
    with pytest.raises(InvalidArgument, match=r"^layer 3"):
        apply_layer(
            io.BytesIO(bytes(blob)),
            tmp_path,
            whiteouts="overlay",
            where="layer 3",
            expected_diff_id=good.diff_id,
        )
