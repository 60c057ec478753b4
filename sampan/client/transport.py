"""HTTP/1.1 by hand over a stream socket: the only transport the CLI needs.

Why not ``http.client``: it costs ~27 ms of imports, and the CLI's 60 ms budget for ``sampan
version`` includes interpreter start.  This module imports ``_socket`` only (the ``socket`` module
costs 3 ms more, for its enums), and ``socket``/``ssl`` only for ``tcp://`` addresses.

The seam (httpx's ``BaseTransport``): a :class:`Transport` turns a :class:`Request` into a
:class:`Response`.  :class:`SocketTransport` speaks over a unix or TCP(+TLS) socket; tests pass
any object with a ``send`` method (see :mod:`sampan.client.testing`).  A Response reads its body
from a :class:`Source` (bytes from a ``recv``-like callable, buffered), undoing chunked transfer
encoding, a Content-Length, or read-until-close framing.  Request bodies may be bytes, a binary
file (sent with Content-Length when it is a regular file, chunked otherwise) or an iterable of
byte strings (chunked).
"""

from __future__ import annotations

import _socket
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from sampan import errors
from sampan.client.address import Address, TLSConfig

if TYPE_CHECKING:
    import socket

Body = bytes | BinaryIO | Iterable[bytes] | None

CHUNK = 256 * 1024
MAX_LINE = 64 * 1024
MAX_HEADERS = 200


class Request:
    __slots__ = ("body", "headers", "method", "target")

    def __init__(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: Body = None
    ) -> None:
        self.method = method
        self.target = target
        self.headers = dict(headers or {})
        self.body = body


class Source:
    """Buffered reads over a ``recv(n) -> bytes`` callable (b"" means end of stream)."""

    __slots__ = ("_buf", "_recv")

    def __init__(self, recv: Callable[[int], bytes], initial: bytes = b"") -> None:
        self._recv = recv
        self._buf = initial

    def _fill(self) -> bool:
        try:
            data = self._recv(CHUNK)
        except TimeoutError:
            raise errors.Unavailable("timed out waiting for the daemon") from None
        except OSError as exc:
            raise errors.Unavailable(f"connection to the daemon failed: {exc.strerror or exc}") from None
        if not data:
            return False
        self._buf += data
        return True

    def readline(self) -> bytes:
        """One line including its ``\\n`` (or whatever is left at the end of the stream)."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[: i + 1], self._buf[i + 1 :]
                return line
            if len(self._buf) > MAX_LINE:
                raise errors.Internal("malformed HTTP response from the daemon: line too long")
            if not self._fill():
                line, self._buf = self._buf, b""
                return line

    def read_some(self, limit: int = CHUNK) -> bytes:
        """Up to ``limit`` bytes; b"" only at the end of the stream."""
        if not self._buf and not self._fill():
            return b""
        data, self._buf = self._buf[:limit], self._buf[limit:]
        return data

    def take_buffered(self) -> bytes:
        """Whatever was read past the point parsed so far (the first bytes of a hijacked stream)."""
        data, self._buf = self._buf, b""
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise errors.Unavailable("connection to the daemon closed in the middle of a response")
        data, self._buf = self._buf[:n], self._buf[n:]
        return data


def _unexpected(what: str) -> errors.SampanError:
    return errors.Internal(f"malformed HTTP response from the daemon: {what}")


class Response:
    """Status, headers (lower-case names) and a body read on demand."""

    def __init__(
        self,
        status: int,
        reason: str,
        headers: dict[str, str],
        source: Source,
        *,
        head: bool = False,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._source = source
        self._on_close = on_close
        self._done = False
        self._remaining = -1  # for Content-Length bodies
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if head or status in (204, 304) or 100 <= status < 200:
            self._done = True
        elif not self._chunked and "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError:
                raise _unexpected("bad Content-Length") from None
            if self._remaining < 0:
                raise _unexpected("bad Content-Length")
            self._done = self._remaining == 0
        self._chunk_left = 0

    def iter_raw(self, size: int = CHUNK) -> Iterator[bytes]:
        """The body, decoded from its transfer framing, in pieces as they arrive."""
        while not self._done:
            data = self._next(size)
            if data:
                yield data
        self.close()

    def _next(self, size: int) -> bytes:
        src = self._source
        if self._chunked:
            if self._chunk_left == 0:
                line = src.readline()
                if not line.endswith(b"\n"):
                    raise errors.Unavailable("connection to the daemon closed in the middle of a response")
                try:
                    self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _unexpected("bad chunk size") from None
                if self._chunk_left == 0:
                    while src.readline().strip():  # trailers, then the empty line
                        pass
                    self._done = True
                    return b""
            data = src.read_some(min(size, self._chunk_left))
            if not data:
                raise errors.Unavailable("connection to the daemon closed in the middle of a response")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                src.read_exact(2)  # CRLF after the chunk data
            return data
        if self._remaining >= 0:
            data = src.read_some(min(size, self._remaining))
            if not data:
                raise errors.Unavailable("connection to the daemon closed in the middle of a response")
            self._remaining -= len(data)
            self._done = self._remaining == 0
            return data
        data = src.read_some(size)
        if not data:
            self._done = True
        return data

    def read(self) -> bytes:
        return b"".join(self.iter_raw())

    def iter_lines(self) -> Iterator[bytes]:
        """Newline-delimited records of the body (JSON-lines progress streams), without ``\\n``."""
        pending = b""
        for data in self.iter_raw():
            pending += data
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending

    def json(self) -> Any:
        import json

        body = self.read()
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise _unexpected(f"invalid JSON body: {body[:80]!r}") from None

    def close(self) -> None:
        self._done = True
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            callback()


def parse_response(
    source: Source, *, head: bool = False, on_close: Callable[[], None] | None = None
) -> Response:
    """Read a status line and headers from ``source``; the body stays in ``source``."""
    while True:
        line = source.readline()
        if not line:
            raise errors.Unavailable("the daemon closed the connection without answering")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise _unexpected(f"bad status line {line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            raw = source.readline()
            text = raw.decode("latin-1").rstrip("\r\n")
            if not text:
                break
            name, sep, value = text.partition(":")
            if not sep:
                raise _unexpected(f"bad header line {raw[:80]!r}")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            raise _unexpected("too many headers")
        if status == 100 or (100 < status < 200 and status != 101):
            continue  # interim responses
        return Response(
            status, parts[2] if len(parts) > 2 else "", headers, source, head=head, on_close=on_close
        )


class Transport(Protocol):
    def send(self, request: Request) -> Response: ...


def encode_head(request: Request, host: str) -> bytes:
    lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def body_framing(body: Body) -> tuple[dict[str, str], Iterator[bytes]]:
    """Headers and pieces for sending ``body``: Content-Length when known, chunked otherwise."""
    if body is None:
        return {}, iter(())
    if isinstance(body, bytes | bytearray | memoryview):
        return {"Content-Length": str(len(body))}, iter((bytes(body),))
    if hasattr(body, "read"):
        fileobj: BinaryIO = body  # type: ignore[assignment]
        pieces = iter(lambda: fileobj.read(CHUNK), b"")
        try:
            st = os.fstat(fileobj.fileno())
            if (st.st_mode & 0o170000) == 0o100000:  # a regular file: its length is known
                length = st.st_size - fileobj.tell()
                return {"Content-Length": str(length)}, pieces
        except (OSError, ValueError, AttributeError):
            pass
        return {"Transfer-Encoding": "chunked"}, _chunked(pieces)
    return {"Transfer-Encoding": "chunked"}, _chunked(iter(body))  # type: ignore[arg-type]


def _chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        if piece:
            yield b"%x\r\n%b\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


class SocketTransport:
    """One connection per request to a unix socket or a TCP(+TLS) address.

    ``on_unreachable`` (the CLI's daemon auto-start) is called once when nothing listens at the
    address; the connection is then retried.
    """

    def __init__(
        self,
        address: Address,
        *,
        tls: TLSConfig | None = None,
        timeout: float | None = None,
        on_unreachable: Callable[[Address], None] | None = None,
    ) -> None:
        self.address = address
        self.tls = tls
        self.timeout = timeout
        self.on_unreachable = on_unreachable

    def _connect(self) -> _socket.socket:
        addr = self.address
        try:
            if addr.scheme == "unix":
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout)
                    sock.connect(addr.path)
                except BaseException:
                    sock.close()
                    raise
                return sock
            import socket

            tcp = socket.create_connection((addr.host, addr.port), timeout=self.timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnreachable(addr) from exc
        except PermissionError:
            raise errors.PermissionDenied(
                f"permission denied while trying to connect to the sampan daemon socket at {addr}"
            ) from None
        except OSError as exc:
            raise errors.Unavailable(f"cannot connect to the sampan daemon at {addr}: {exc.strerror or exc}") from None
        if self.tls is not None:
            return self._wrap_tls(tcp)
        return tcp

    def _wrap_tls(self, sock: socket.socket) -> socket.socket:
        import ssl

        tls = self.tls
        assert tls is not None
        try:
            ctx = ssl.create_default_context(cafile=tls.cacert or None)
            if not tls.verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if tls.cert:
                ctx.load_cert_chain(tls.cert, tls.key or None)
            return ctx.wrap_socket(sock, server_hostname=self.address.host)
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise errors.Unavailable(f"TLS connection to {self.address} failed: {exc}") from None

    def connect(self) -> _socket.socket:
        try:
            return self._connect()
        except DaemonUnreachable:
            if self.on_unreachable is None:
                raise
            callback, self.on_unreachable = self.on_unreachable, None
            callback(self.address)
            return self._connect()

    def send(self, request: Request) -> Response:
        sock = self.connect()
        try:
            extra, pieces = body_framing(request.body)
            request.headers.update(extra)
            request.headers.setdefault("Connection", "close")
            host = "localhost" if self.address.scheme == "unix" else self.address.host
            sock.sendall(encode_head(request, host))
            try:
                if "Content-Length" in extra and self.tls is None and hasattr(request.body, "fileno"):
                    _sendfile(sock, request.body, int(extra["Content-Length"]))  # type: ignore[arg-type]
                else:
                    for piece in pieces:
                        sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon answered early (an error): read what it said
            return parse_response(Source(sock.recv), head=request.method == "HEAD", on_close=sock.close)
        except TimeoutError:
            sock.close()
            raise errors.Unavailable(f"timed out talking to the sampan daemon at {self.address}") from None
        except OSError as exc:
            sock.close()
            raise errors.Unavailable(f"connection to the sampan daemon at {self.address} failed: {exc.strerror or exc}") from None
        except BaseException:
            sock.close()
            raise


def _sendfile(sock: _socket.socket, fileobj: BinaryIO, length: int) -> None:
    """Send ``length`` bytes of a regular file from its current offset without copying them."""
    fd, offset = fileobj.fileno(), fileobj.tell()
    end = offset + length
    timeout = sock.gettimeout()
    sock.setblocking(True)
    try:
        while offset < end:
            sent = os.sendfile(sock.fileno(), fd, offset, min(end - offset, 1 << 30))
            if sent == 0:
                raise errors.Unavailable("the file being sent to the daemon shrank while it was read")
            offset += sent
    finally:
        sock.settimeout(timeout)
    fileobj.seek(offset)


class DaemonUnreachable(errors.Unavailable):
    """Nothing listens at the daemon's address (no socket, or connection refused)."""

    def __init__(self, address: Address) -> None:
        super().__init__(
            f"Cannot connect to the sampan daemon at {address}. Is the sampan daemon running?"
        )
        self.address = address
