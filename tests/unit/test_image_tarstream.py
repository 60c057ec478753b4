"""distribution/tarstream.py: the outer-archive tar reader and the deterministic writer."""

from __future__ import annotations

import io
import tarfile

import pytest

from sampan.distribution.tarstream import MAX_META_HEADER, TarWriter, decompressed, iter_members
from sampan.errors import InvalidArgument


def make(fmt: int, name: str, data: bytes, *, link: bool = True, **pax: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax) as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        if link:
            sym = tarfile.TarInfo("link")
            sym.type = tarfile.SYMTYPE
            sym.linkname = "x/" * 80 + name
            tf.addfile(sym)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_and_links(fmt: int) -> None:
    name = "d/" * 70 + "file"
    members = [(m.name, m.type, m.linkname, r.read()) for m, r in iter_members(io.BytesIO(make(fmt, name, b"abc")))]
    assert members == [(name, tarfile.REGTYPE, "", b"abc"), ("link", tarfile.SYMTYPE, "x/" * 80 + name, b"")]


def test_unread_data_is_skipped_and_gzip_is_detected() -> None:
    import gzip

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for n in ("a", "b"):
            info = tarfile.TarInfo(n)
            info.size = 3000
            tf.addfile(info, io.BytesIO(n.encode() * 3000))
    stream = decompressed(io.BytesIO(gzip.compress(buf.getvalue())))
    seen = []
    for member, reader in iter_members(stream):
        seen.append((member.name, reader.read(2) if member.name == "b" else b""))
    assert seen == [("a", b""), ("b", b"bb")]


def test_huge_pax_header_refused() -> None:
    data = make(tarfile.PAX_FORMAT, "f", b"x", comment="y" * (MAX_META_HEADER + 10))
    with pytest.raises(InvalidArgument, match="extended header"):
        list(iter_members(io.BytesIO(data)))


def test_truncated_member_refused() -> None:
    data = make(tarfile.USTAR_FORMAT, "f", b"x" * 5000, link=False)[:2048]
    with pytest.raises(InvalidArgument, match="truncated"):
        for _, reader in iter_members(io.BytesIO(data)):
            reader.read()


def test_writer_is_deterministic_and_readable() -> None:
    def write() -> bytes:
        out = io.BytesIO()
        w = TarWriter(out)
        w.directory("blobs")
        w.file_bytes("blobs/a", b"hello")
        w.file_stream("blobs/b", io.BytesIO(b"x" * 1000), 1000)
        w.close()
        return out.getvalue()

    data = write()
    assert data == write()
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        infos = tf.getmembers()
        assert [(i.name, i.size, i.mtime, i.uid, i.uname) for i in infos] == [
            ("blobs", 0, 0, 0, ""), ("blobs/a", 5, 0, 0, ""), ("blobs/b", 1000, 0, 0, "")]
    w = TarWriter(io.BytesIO())
    with pytest.raises(InvalidArgument, match="ended 10 bytes early"):
        w.file_stream("short", io.BytesIO(b"x" * 90), 100)
