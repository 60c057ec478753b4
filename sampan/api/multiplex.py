"""Docker's multiplexed stream framing (attach, exec and logs without a TTY).

Each frame is an 8-byte header ``[stream, 0, 0, 0, size (big-endian uint32)]`` followed by
``size`` bytes of payload.  Streams: 0 stdin (written by no one here), 1 stdout, 2 stderr,
3 systemerr (an error the daemon reports in band after the 101 or 200 was sent; the docker
CLI prints it and exits 1).  With a TTY the stream is raw bytes and there are no frames.

The shim speaks the same framing on its attach sockets (``runtime/shimproto.py``), so attach
forwards its frames untouched; this module frames what the engine produces itself (logs,
exec output, errors) and parses frames in tests and clients.
"""

from __future__ import annotations

import struct

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
STREAMS = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR}
HEADER = struct.Struct(">BxxxI")
MAX_FRAME = 1 << 20  # larger payloads are split, as Docker's stdcopy writer does with its buffer


def frame(stream: int, data: bytes) -> bytes:
    """``data`` as one or more frames of ``stream``; empty data gives nothing."""
    if len(data) <= MAX_FRAME:
        return HEADER.pack(stream, len(data)) + data if data else b""
    out = bytearray()
    for i in range(0, len(data), MAX_FRAME):
        chunk = data[i : i + MAX_FRAME]
        out += HEADER.pack(stream, len(chunk)) + chunk
    return bytes(out)


class Demuxer:
    """Incremental parser: feed bytes, get ``(stream, payload)`` pairs of complete frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while len(self._buf) >= HEADER.size:
            stream, size = HEADER.unpack_from(self._buf)
            if len(self._buf) < HEADER.size + size:
                break
            out.append((stream, bytes(self._buf[HEADER.size : HEADER.size + size])))
            del self._buf[: HEADER.size + size]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered."""
        return len(self._buf)


def demux(data: bytes) -> dict[int, bytes]:
    """Split a whole multiplexed body into its streams (tests, small bodies)."""
    d = Demuxer()
    out: dict[int, bytearray] = {}
    for stream, payload in d.feed(data):
        out.setdefault(stream, bytearray()).extend(payload)
    return {k: bytes(v) for k, v in out.items()}
