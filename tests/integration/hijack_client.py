"""A raw hijacking client for tests: sends an ``Upgrade: tcp`` request on a unix socket and
returns the socket once the ``101 UPGRADED`` head is read (what the docker CLI does)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from sampan.api.multiplex import Demuxer


class Hijacked:
    def __init__(self, sock: socket.socket, status: int, headers: dict[str, str], rest: bytes) -> None:
        self.sock = sock
        self.status = status
        self.headers = headers
        self.buf = rest

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def half_close(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def read_all(self, timeout: float = 20.0) -> bytes:
        """Everything until the daemon closes the stream."""
        deadline = time.monotonic() + timeout
        out = bytearray(self.buf)
        self.buf = b""
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                return bytes(out)
            out += chunk
        raise AssertionError(f"stream not closed within {timeout}s; got {bytes(out)[:200]!r}")

    def read_until(self, needle: bytes, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        out = bytearray(self.buf)
        self.buf = b""
        while needle not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {bytes(out)[:300]!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed before {needle!r}; got {bytes(out)[:300]!r}")
            out += chunk
        return bytes(out)

    def close(self) -> None:
        self.sock.close()


def hijack(sock_path: str, method: str, path: str, body: Any = None, *, upgrade: bool = True) -> Hijacked:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock_path)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: docker\r\n"
    if upgrade:
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    s.sendall(head.encode() + b"\r\n" + data)
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before the response head: {bytes(buf)!r}")
        buf += chunk
    raw_head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = raw_head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return Hijacked(s, status, headers, rest)


def demux_all(data: bytes) -> dict[int, bytes]:
    d = Demuxer()
    out: dict[int, bytearray] = {}
    for stream, payload in d.feed(data):
        out.setdefault(stream, bytearray()).extend(payload)
    assert d.pending == 0, "a truncated frame at the end of the stream"
    return {k: bytes(v) for k, v in out.items()}
