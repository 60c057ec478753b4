"""A transport without sockets, for tests of the client and the CLI (httpx's ``MockTransport``).

The handler sees each request with its body already read (chunked, file or bytes) and returns
``(status, headers, body)``; the body may be bytes or an iterable of byte strings, which the
Response then reads piece by piece as it would from a socket.  ``requests`` records what was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sampan.client.transport import Request, Response, Source, body_framing

Handler = Callable[[Request, bytes], "tuple[int, dict[str, str], bytes | Iterable[bytes]]"]


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


class MockTransport:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[Request, bytes]] = []

    def send(self, request: Request) -> Response:
        extra, pieces = body_framing(request.body)
        request.headers.update(extra)
        raw = b"".join(pieces)
        body = _dechunk(raw) if extra.get("Transfer-Encoding") == "chunked" else raw
        self.requests.append((request, body))
        status, headers, payload = self.handler(request, body)
        chunks = iter([payload] if isinstance(payload, bytes) else list(payload))
        lower = {k.lower(): v for k, v in headers.items()}
        if "content-length" not in lower and "transfer-encoding" not in lower:
            lower["transfer-encoding"] = "chunked"
            chunks = iter([b"%x\r\n%b\r\n" % (len(c), c) for c in chunks if c] + [b"0\r\n\r\n"])

        def recv(_n: int) -> bytes:
            return next(chunks, b"")

        return Response(status, "", lower, Source(recv), head=request.method == "HEAD")
