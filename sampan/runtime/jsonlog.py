"""The json-file log writer: Docker's container log format, with rotation.

Each line a container writes becomes one JSON object on its own line::

    {"log":"hello\\n","stream":"stdout","time":"2026-11-27T18:09:53.123456789Z"}

A line longer than 16 KiB is cut into partial entries (no trailing newline), as Docker's log
copier does; what is left unterminated when a stream closes is written as is.  When the file
would grow past ``max_size`` bytes it is rotated: ``log`` -> ``log.1`` -> ... ->
``log.<max_files-1>``, the oldest dropped (``max_files`` 1 truncates in place; ``max_size`` 0
never rotates).  Docker's defaults for sampan: 10 MB x 3.

Imported by the shim: standard library only (os, json, time).
"""

from __future__ import annotations

import json
import os
import time

MAX_LINE = 16 * 1024
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 3


def rfc3339nano(ns: int) -> str:
    """UTC time like Go's time.RFC3339Nano: trailing zeros of the fraction dropped."""
    secs, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(secs)  # formatted by hand: strftime would load locale data in the shim
    text = (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    )
    digits = f"{frac:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def encode_entry(stream: str, data: bytes, ns: int) -> bytes:
    """One json-file line, exactly as ``json.dumps(..., ensure_ascii=False)`` writes it.

    The common case (valid UTF-8 without control characters other than newline, carriage
    return and tab) is escaped with a few bytes methods: in the shim, whose memory is the
    budget, the json encoder's first use alone costs a couple of hundred KiB of private pages.
    """
    middle = _STREAM_FIELD.get(stream)
    if (
        middle is None
        or not (data.isascii() or _valid_utf8(data))
        or len(data.translate(None, _OTHER_CONTROLS)) != len(data)
    ):
        return _encode_entry_json(stream, data, ns)
    for raw, escaped in _ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return b'{"log":"' + data + middle + rfc3339nano(ns).encode() + b'"}\n'


def _encode_entry_json(stream: str, data: bytes, ns: int) -> bytes:
    entry = {"log": data.decode("utf-8", "replace"), "stream": stream, "time": rfc3339nano(ns)}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


_STREAM_FIELD = {name: f'","stream":"{name}","time":"'.encode() for name in ("stdout", "stderr")}
_ESCAPES = ((b"\\", b"\\\\"), (b'"', b'\\"'), (b"\n", b"\\n"), (b"\r", b"\\r"), (b"\t", b"\\t"))
_OTHER_CONTROLS = bytes(c for c in range(32) if c not in b"\n\r\t")


class JsonLogWriter:
    """Writes container output as json-file entries; not thread-safe (the shim is one thread)."""

    def __init__(
        self, path: str, *, max_size: int = DEFAULT_MAX_SIZE, max_files: int = DEFAULT_MAX_FILES
    ) -> None:
        self.path = path
        self.max_size = max(0, max_size)
        self.max_files = max(1, max_files)
        self._pending: dict[str, bytes] = {}
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes, ns: int | None = None) -> None:
        """Log what a stream produced; complete lines are written now, the rest buffered."""
        if ns is None:
            ns = time.time_ns()
        buf = self._pending.pop(stream, b"") + data
        out = []
        while True:
            nl = buf.find(b"\n", 0, MAX_LINE)
            if nl >= 0:
                out.append(encode_entry(stream, buf[: nl + 1], ns))
                buf = buf[nl + 1 :]
            elif len(buf) >= MAX_LINE:
                out.append(encode_entry(stream, buf[:MAX_LINE], ns))
                buf = buf[MAX_LINE:]
            else:
                break
        if buf:
            self._pending[stream] = buf
        for entry in out:
            self._append(entry)

    def flush(self, stream: str | None = None) -> None:
        """Write what is buffered for ``stream`` (all streams if None) without a newline."""
        for name in [stream] if stream else sorted(self._pending):
            data = self._pending.pop(name, b"")
            if data:
                self._append(encode_entry(name, data, time.time_ns()))

    def close(self) -> None:
        if self._fd >= 0:
            self.flush()
            os.close(self._fd)
            self._fd = -1

    def _append(self, entry: bytes) -> None:
        if self.max_size and self._size and self._size + len(entry) > self.max_size:
            self._rotate()
        view = memoryview(entry)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(entry)

    def _rotate(self) -> None:
        if self.max_files == 1:
            os.ftruncate(self._fd, 0)
            self._size = 0
            return
        os.close(self._fd)
        self._fd = -1
        for i in range(self.max_files - 1, 0, -1):
            src = self.path if i == 1 else f"{self.path}.{i - 1}"
            try:
                os.replace(src, f"{self.path}.{i}")
            except FileNotFoundError:
                pass
        self._fd = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_TRUNC, 0o640
        )
        self._size = 0
