"""Image archives as tar streams: read members once, in order; write them deterministically.

Reading (``iter_members``): ustar/GNU/PAX headers are parsed here (``tarfile.TarInfo`` does the
field decoding), member data is handed out as a bounded reader over the one stream, and what
the consumer leaves unread is skipped.  A PAX or GNU long-name header over 1 MiB is refused.
This is for the *outer* archive of ``docker load``/``save`` (manifest.json, blobs, layer.tar
files); layer contents are extracted by ``storage.archive``.

Writing (``TarWriter``): USTAR headers with fixed owner (0:0, no names), fixed mtime and
modes, so the same input gives byte-identical archives.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sampan.errors import InvalidArgument
from sampan.image import streams

BLOCK = 512
_CHUNK = 1 << 20
MAX_META_HEADER = 1 << 20


@dataclass
class Member:
    name: str
    type: bytes  # tarfile.REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, ...
    size: int
    linkname: str


def decompressed(src: BinaryIO) -> BinaryIO:
    """``src`` as a plain tar stream, whatever it was compressed with (gzip, zstd, bzip2, xz)."""
    return streams.decompressed(src, "archive")


def _read_exact(src: BinaryIO, n: int, *, allow_short: bool = False) -> bytes:
    parts = []
    left = n
    while left:
        data = src.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    out = b"".join(parts)
    if left and not allow_short:
        raise InvalidArgument("archive is truncated (unexpected end of tar stream)")
    return out


class MemberReader(io.RawIOBase):
    """The data of one member: at most ``size`` bytes of the underlying stream."""

    def __init__(self, src: BinaryIO, size: int) -> None:
        super().__init__()
        self._src = src
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            return 0
        want = min(len(buffer), self.left)
        data = self._src.read(want)
        if not data:
            raise InvalidArgument("archive is truncated (unexpected end of tar stream)")
        n = len(data)
        buffer[:n] = data
        self.left -= n
        return n

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.left
        size = min(size, self.left)
        if size <= 0:
            return b""
        data = self._src.read(size)
        if not data:
            raise InvalidArgument("archive is truncated (unexpected end of tar stream)")
        self.left -= len(data)
        return data

    def skip(self) -> None:
        while self.left > 0:
            self.read(min(self.left, _CHUNK))


def _pax_records(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise InvalidArgument("archive has a malformed PAX header") from None
        if length <= 0:
            raise InvalidArgument("archive has a malformed PAX header")
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def iter_members(src: BinaryIO) -> Iterator[tuple[Member, MemberReader]]:
    """Each member of the tar stream ``src`` with a reader of its data (skipped if unread)."""
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = _read_exact(src, BLOCK, allow_short=True)
        if len(header) < BLOCK:
            if not header:
                return  # tolerate a stream without end-of-archive blocks
            raise InvalidArgument("archive is truncated (partial tar header)")
        if header == bytes(BLOCK):
            return
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.TarError as exc:
            raise InvalidArgument(f"archive has a malformed tar header: {exc}") from None
        size = info.size
        padded = -size % BLOCK
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE):
            if size > MAX_META_HEADER:
                raise InvalidArgument(f"archive has a {size}-byte extended header (limit {MAX_META_HEADER})")
            data = _read_exact(src, size + padded)[:size]
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif info.type == tarfile.GNUTYPE_LONGLINK:
                long_link = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif info.type == tarfile.XHDTYPE:
                pax = _pax_records(data)
            continue
        name = pax.get("path", long_name if long_name is not None else info.name)
        linkname = pax.get("linkpath", long_link if long_link is not None else info.linkname)
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise InvalidArgument("archive has a malformed PAX size") from None
            padded = -size % BLOCK
        long_name = long_link = None
        pax = {}
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            size_data = size if info.type not in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE) else 0
        else:
            size_data = size
        reader = MemberReader(src, size_data)
        member = Member(name=name, type=info.type, size=size_data, linkname=linkname)
        yield member, reader
        reader.skip()
        if size_data:
            _read_exact(src, -size_data % BLOCK)


class TarWriter:
    """Deterministic USTAR output: owner 0:0 without names, fixed mtime, 0644/0755 modes."""

    def __init__(self, out: BinaryIO, *, mtime: int = 0) -> None:
        self._out = out
        self._mtime = mtime
        self.written = 0

    def _header(self, name: str, type_: bytes, size: int, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.type = type_
        info.size = size
        info.mode = mode
        info.mtime = self._mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        buf = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
        self._out.write(buf)
        self.written += len(buf)

    def directory(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", tarfile.DIRTYPE, 0, 0o755)

    def file_bytes(self, name: str, data: bytes) -> None:
        self._header(name, tarfile.REGTYPE, len(data), 0o644)
        self._out.write(data)
        self._pad(len(data))

    def file_stream(self, name: str, src: BinaryIO, size: int) -> int:
        """Write ``size`` bytes of ``src``; raise if it has fewer or more."""
        self._header(name, tarfile.REGTYPE, size, 0o644)
        left = size
        while left:
            data = src.read(min(left, _CHUNK))
            if not data:
                raise InvalidArgument(f"{name}: source ended {left} bytes early")
            self._out.write(data)
            left -= len(data)
        if src.read(1):
            raise InvalidArgument(f"{name}: source is longer than its recorded {size} bytes")
        self._pad(size)
        return size

    def _pad(self, size: int) -> None:
        pad = -size % BLOCK
        if pad:
            self._out.write(bytes(pad))
        self.written += size + pad

    def close(self) -> None:
        self._out.write(bytes(BLOCK * 2))
        self.written += BLOCK * 2
