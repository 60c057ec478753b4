"""Small stream adapters the image store and the archive formats share.

* :class:`PrefixedReader` gives back bytes already read to sniff a stream's compression;
* :func:`decompressed` turns a stream compressed with gzip, zstd, bzip2 or xz (or none) into
  a plain one, whose corruption errors surface as one-line ``InvalidArgument`` naming ``what``;
* :class:`TeeReader` copies every byte read into a content writer (``docker import`` keeps the
  blob as given while unpacking it, reading the input once).
"""

from __future__ import annotations

import bz2
import io
import lzma
from typing import BinaryIO, cast

from sampan.errors import InvalidArgument
from sampan.storage import compression
from sampan.storage.content import ContentWriter

CHUNK = 1 << 20
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"


class PrefixedReader(io.RawIOBase):
    """``head`` followed by the rest of ``src``."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            return int(readinto(buffer))
        data = self._src.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class CheckedReader(io.RawIOBase):
    """A decompressing reader whose corruption errors become one-line InvalidArgument."""

    def __init__(self, reader: BinaryIO, kind: str, what: str) -> None:
        super().__init__()
        self._reader = reader
        self._kind = kind
        self._what = what

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._reader.read(-1 if size is None else size)
        except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
            raise InvalidArgument(f"{self._what}: corrupt {self._kind} stream: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError
            if type(exc).__module__.startswith("zstandard"):
                raise InvalidArgument(f"{self._what}: corrupt {self._kind} stream: {exc}") from None
            raise

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_head(src: BinaryIO, n: int) -> bytes:
    parts = []
    while n:
        data = src.read(n)
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def _seekable(src: BinaryIO) -> bool:
    try:
        return bool(src.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def sniff(src: BinaryIO) -> tuple[BinaryIO, bytes]:
    """``src`` positioned as before (re-read in place when seekable) and its first 6 bytes."""
    head = _read_head(src, 6)
    if _seekable(src):
        src.seek(-len(head), io.SEEK_CUR)
        return src, head
    return cast(BinaryIO, io.BufferedReader(PrefixedReader(head, src), CHUNK)), head


def decompressed(src: BinaryIO, what: str, *, kinds: tuple[str, ...] = ("gzip", "zstd", "bzip2", "xz")) -> BinaryIO:
    """``src`` as a plain stream, whatever of ``kinds`` it was compressed with."""
    stream, head = sniff(src)
    reader: BinaryIO | None = None
    if head.startswith(_BZIP2) and "bzip2" in kinds:
        kind, reader = "bzip2", cast(BinaryIO, bz2.BZ2File(stream))
    elif head.startswith(_XZ) and "xz" in kinds:
        kind, reader = "xz", cast(BinaryIO, lzma.LZMAFile(stream))  # noqa: SIM115 (returned open)
    else:
        kind = compression.detect(head)
        if kind and kind in kinds:
            reader = compression.decompressing_reader(stream, kind)
    if reader is None:
        return stream
    return cast(BinaryIO, io.BufferedReader(CheckedReader(reader, kind, what), CHUNK))


class TeeReader(io.RawIOBase):
    """Reads ``src`` and writes every byte read into ``sink`` (a content writer)."""

    def __init__(self, src: BinaryIO, sink: ContentWriter) -> None:
        super().__init__()
        self._src = src
        self._sink = sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._src.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._sink.write(data)
        return n
