"""Tar headers, compression and the deterministic LayerWriter (no root needed)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from sampan.errors import Internal, InvalidArgument, UnsafeArchiveEntry
from sampan.storage import compression, tarformat
from sampan.storage.archive import write_tree
from sampan.storage.extract import Source, entries
from sampan.storage.layerwriter import LayerWriter
from sampan.storage.tarformat import TarEntry


@pytest.mark.parametrize("kind", ["gzip", "zstd", ""])
def test_compression_round_trip_keeps_target_open(kind: str) -> None:
    data = os.urandom(50_000) * 4
    out = io.BytesIO()
    w = compression.compressing_writer(out, kind)
    w.write(data)
    w.close()
    assert not out.closed
    blob = out.getvalue()
    assert compression.detect(blob[:4]) == kind
    r = compression.decompressing_reader(io.BytesIO(blob), kind)
    assert r.read() == data


def test_gzip_writer_is_deterministic() -> None:
    def gz() -> bytes:
        out = io.BytesIO()
        w = compression.compressing_writer(out, "gzip")
        w.write(b"same bytes" * 1000)
        w.close()
        return out.getvalue()

    assert gz() == gz()


def test_unknown_compression_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="bzip2"):
        compression.decompressing_reader(io.BytesIO(), "bzip2")


def _read_all(data: bytes) -> list[TarEntry]:
    src = Source(io.BytesIO(data), "t", "tar")
    out = []
    while (e := entries(src, "t")) is not None:
        out.append(e)
        src.copy_to(None, e.size if e.type in "07\0" else 0, e.name)
    return out


@pytest.mark.parametrize("fmt", ["gnu", "pax", "ustar"])
def test_reader_takes_gnu_tar_formats(tmp_path: Path, fmt: str) -> None:
    long = (
        "d" * 60 + "/" + "n" * 90 + "/" + "f" * 80 if fmt != "ustar" else "d" * 60 + "/" + "f" * 80
    )
    (tmp_path / "src" / long).parent.mkdir(parents=True)
    (tmp_path / "src" / long).write_bytes(b"x" * 700)
    os.symlink("t" * 150 if fmt != "ustar" else "t", tmp_path / "src" / "sym")
    tar = subprocess.run(
        ["tar", f"--format={fmt}", "-C", str(tmp_path / "src"), "-cf", "-", "."],
        check=True,
        capture_output=True,
    ).stdout
    got = {e.name.lstrip("./"): e for e in _read_all(tar)}
    assert got[long].size == 700 and got[long].type == "0"
    assert got["sym"].linkname.startswith("t")


def test_header_round_trip_with_pax_when_needed() -> None:
    e = TarEntry(
        "a/" + "x" * 300,
        tarformat.REG,
        mode=0o4755,
        uid=3_000_000,
        gid=5,
        size=0,
        mtime_ns=-5_000_000_000,
        xattrs={"security.capability": b"\x01\x02"},
    )
    [back] = _read_all(tarformat.encode_header(e) + b"\0" * 1024)
    assert (back.name, back.mode, back.uid, back.gid, back.mtime_ns, back.xattrs) == (
        e.name,
        e.mode,
        e.uid,
        e.gid,
        e.mtime_ns,
        e.xattrs,
    )
    short = tarformat.encode_header(TarEntry("short", tarformat.REG))
    assert len(short) == 512  # plain ustar: no PAX block


def test_corrupt_header_checksum_is_invalid() -> None:
    block = bytearray(tarformat.encode_header(TarEntry("f", tarformat.REG)))
    block[0] = ord("g")
    with pytest.raises(InvalidArgument, match="checksum"):
        _read_all(bytes(block) + b"\0" * 1024)


def test_gnu_sparse_is_refused() -> None:
    pax = tarformat.pax_record("GNU.sparse.major", b"1")
    data = tarformat.encode_header(TarEntry("PaxHeaders/f", tarformat.PAX, size=len(pax)))
    data += pax + b"\0" * (-len(pax) % 512) + tarformat.encode_header(TarEntry("f", tarformat.REG))
    with pytest.raises(UnsafeArchiveEntry, match="sparse"):
        _read_all(data + b"\0" * 1024)


def test_writer_refuses_unsorted_entries() -> None:
    w = LayerWriter(io.BytesIO())
    w.add(TarEntry("b", tarformat.REG))
    with pytest.raises(Internal, match="out of order"):
        w.add(TarEntry("a", tarformat.REG))


def _tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    (root / "a-b").write_bytes(b"dash sorts after the dir a/ in tar order")
    (root / "a").mkdir()
    (root / "a" / "z").write_bytes(b"z")
    os.symlink("etc/hosts", root / "link")
    os.link(root / "etc" / "hosts", root / "hard")


def test_write_tree_is_deterministic_and_clamps_mtimes(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _tree(one)
    _tree(two)
    for root, t in ((one, 1_800_000_000), (two, 1_900_000_000)):
        for p in [root, *root.rglob("*")]:
            os.utime(p, (t, t), follow_symlinks=False)
    a, b = io.BytesIO(), io.BytesIO()
    la = write_tree(one, a, source_date_epoch=1_000_000)
    lb = write_tree(two, b, source_date_epoch=1_000_000)
    assert la == lb and a.getvalue() == b.getvalue()
    assert la.size == len(a.getvalue())
    assert write_tree(one, io.BytesIO()) != write_tree(two, io.BytesIO())  # without clamping
    with tarfile.open(fileobj=io.BytesIO(a.getvalue())) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a", "a/z", "a-b", "etc", "etc/hosts", "hard", "link"]
    assert {m.mtime for m in members} == {1_000_000}
    assert all(m.uname == "" and m.gname == "" for m in members)
    hard = next(m for m in members if m.name == "hard")
    assert hard.islnk() and hard.linkname == "etc/hosts"


def test_write_tree_output_is_read_by_gnu_tar(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    (tmp_path / "src" / ("deep" * 30)).mkdir()
    (tmp_path / "src" / ("deep" * 30) / ("file" * 30)).write_bytes(b"long")
    out = tmp_path / "layer.tar"
    with open(out, "wb") as f:
        write_tree(tmp_path / "src", f)
    listing = subprocess.run(
        ["tar", "-tf", str(out)], check=True, capture_output=True, text=True
    ).stdout
    assert ("deep" * 30) + "/" + ("file" * 30) in listing.splitlines()


def test_writer_takes_bytes_and_fds_alike(tmp_path: Path) -> None:
    payload = b"hello layer\n" * 100
    (tmp_path / "f").write_bytes(payload)
    a, b = io.BytesIO(), io.BytesIO()
    wa = LayerWriter(a)
    wa.add(TarEntry("etc/motd", tarformat.REG, mode=0o644, size=len(payload)), payload)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        wb = LayerWriter(b)
        wb.add(TarEntry("etc/motd", tarformat.REG, mode=0o644, size=len(payload)), fd)
    finally:
        os.close(fd)
    assert wa.close() == wb.close() and a.getvalue() == b.getvalue()
    with tarfile.open(fileobj=io.BytesIO(a.getvalue())) as tar:
        member = tar.extractfile("etc/motd")
        assert member is not None and member.read() == payload


def test_corrupt_zstd_raises_from_the_reader_thread() -> None:
    out = io.BytesIO()
    w = compression.compressing_writer(out, "zstd")
    w.write(os.urandom(3 << 20))
    w.close()
    blob = bytearray(out.getvalue())
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\xff" * 64
    r = compression.decompressing_reader(io.BytesIO(bytes(blob)), "zstd")
    with pytest.raises(Exception, match=r"(?i)zstd|corrupt|error"):
        while r.read(1 << 20):
            pass
    r.close()


def test_reader_closed_early_does_not_hang() -> None:
    out = io.BytesIO()
    w = compression.compressing_writer(out, "zstd")
    w.write(os.urandom(8 << 20))
    w.close()
    r = compression.decompressing_reader(io.BytesIO(out.getvalue()), "zstd")
    assert len(r.read(1000)) == 1000
    r.close()  # the prefetching thread stops although most of the stream is unread
