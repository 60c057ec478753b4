"""Layer compression: detection by magic bytes, decompressing readers, compressing writers.

gzip goes through python-isal (``isal.igzip``, threaded for reading: 550 MB/s decompress, 450 MB/s compress here,
against 221 and 33 MB/s for the standard ``gzip`` module); zstd through ``zstandard``.
The empty string names an uncompressed stream.

Typical use::

    head = f.peek(4) if hasattr(f, "peek") else ...
    with decompressing_reader(f, detect(head)) as r:      # read the plain tar
        ...
    w = compressing_writer(out, "gzip")
    w.write(tar_bytes); w.close()                         # flushes the gzip trailer; out stays open
"""

from __future__ import annotations

import io
import queue
import threading
from typing import Any, BinaryIO, cast

from sampan.errors import InvalidArgument

GZIP = "gzip"
ZSTD = "zstd"
NONE = ""
KNOWN = (GZIP, ZSTD, NONE)

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def detect(head: bytes) -> str:
    """``"gzip"``, ``"zstd"`` or ``""`` from the first bytes of a stream (4 are enough)."""
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZSTD_MAGIC):
        return ZSTD
    return NONE


def _check(compression: str) -> None:
    if compression not in KNOWN:
        raise InvalidArgument(f"unsupported compression {compression!r} (want gzip, zstd or none)")


def decompressing_reader(f: BinaryIO, compression: str) -> BinaryIO:
    """A binary reader of the decompressed bytes of ``f``; ``""`` returns ``f`` itself.

    Closing the reader does not close ``f``.  Corrupt or truncated input raises the
    decompressor's own error while reading (``EOFError``, ``OSError``, ``zstandard.ZstdError``);
    callers that know what the stream is translate it (``archive.apply_layer`` does).
    """
    _check(compression)
    if compression == GZIP:
        from isal import igzip_threaded

        # decompression runs in isal's own thread, without the GIL, overlapping the caller's
        # hashing and writing (200 MiB layer: 0.59 s instead of 1.04 s here, see archive.py)
        return cast(BinaryIO, igzip_threaded.open(f, "rb", threads=1))  # type: ignore[no-untyped-call]
    if compression == ZSTD:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(
            f, read_size=1 << 20, read_across_frames=True, closefd=False
        )
        # zstandard releases the GIL while decompressing: a reader thread overlaps it with
        # the caller's hashing and writing (decompress + sha256 of 200 MiB: 0.42 s -> 0.29 s)
        return cast(BinaryIO, io.BufferedReader(_Prefetch(reader), buffer_size=1 << 20))
    return f


class _Prefetch(io.RawIOBase):
    """Reads ``f`` in a thread, a few 1 MiB chunks ahead; errors are raised to the reader."""

    def __init__(self, f: Any, *, chunk: int = 1 << 20, depth: int = 4) -> None:
        self._f = f
        self._chunk = chunk
        self._queue: queue.Queue[bytes] = queue.Queue(depth)
        self._pending = memoryview(b"")
        self._error: BaseException | None = None
        self._eof = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decompress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        data = b""
        try:
            while not self._stop.is_set():
                data = self._f.read(self._chunk)
                self._put(data)
                if not data:
                    return
        except BaseException as exc:
            self._error = exc
            self._put(b"")

    def _put(self, data: bytes) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(data, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._pending:
            if self._eof:
                return 0
            data = self._queue.get()
            if not data:
                self._eof = True
                if self._error is not None:
                    raise self._error
                return 0
            self._pending = memoryview(data)
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._thread.join()
        super().close()


class _ClosingShield(io.RawIOBase):
    """Passes writes to ``f`` but never closes it (isal's writer closes its fileobj otherwise)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._f.write(b)
        return len(b)

    def flush(self) -> None:
        self._f.flush()


def compressing_writer(f: BinaryIO, compression: str, *, level: int | None = None) -> BinaryIO:
    """A binary writer that compresses into ``f``; ``""`` returns a writer that passes through.

    Closing it flushes the compressor (trailer included) but does NOT close ``f``.
    gzip output is deterministic (mtime 0, no file name).  Default levels: gzip 1 (isal's
    fastest, still close to gzip -6 in size for layers), zstd 3.
    """
    _check(compression)
    shield = cast(BinaryIO, _ClosingShield(f))
    if compression == GZIP:
        from isal import igzip

        lvl = 1 if level is None else max(0, min(3, level))
        writer = igzip.IGzipFile(  # type: ignore[no-untyped-call]
            fileobj=shield, mode="wb", compresslevel=lvl, mtime=0
        )
        return cast(BinaryIO, writer)
    if compression == ZSTD:
        import zstandard

        lvl = 3 if level is None else level
        return cast(
            BinaryIO,
            zstandard.ZstdCompressor(level=lvl, write_checksum=True).stream_writer(
                shield, closefd=False
            ),
        )
    return shield
