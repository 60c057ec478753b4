"""Connections the CLI keeps open past one request: the hijacked stream and the early request.

* :func:`hijack` sends a request with ``Upgrade: tcp`` (attach, exec start) and, once the daemon
  answers ``101 UPGRADED`` (or ``200`` with the raw stream), hands back a :class:`Hijacked`
  connection: the raw socket both ways, with the bytes already read past the headers kept.
  Stdin EOF is a half-close (:meth:`Hijacked.close_write`); output keeps flowing after it.
* :func:`send_early` sends a request and reads its headers now, its body later: ``docker run``
  opens ``POST /containers/{id}/wait`` before ``start``; the daemon answers the headers once the
  waiter is registered and the body when the container exits.  Transports without sockets
  (tests) send it when the answer is read.

Both need the transport's ``connect()`` (:class:`~sampan.client.transport.SocketTransport`);
wrappers that keep the real transport in ``inner`` (the CLI's ``-D`` logger) are looked through.
"""

from __future__ import annotations

import _socket
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.client.client import encode_query, error_from_response, quote
from sampan.client.transport import (
    Request,
    Response,
    Source,
    body_framing,
    encode_head,
    parse_response,
)

if TYPE_CHECKING:
    from sampan.client.client import Client, Query


def _socket_transport(client: Client) -> Any:
    transport: Any = client.transport
    while not hasattr(transport, "connect") and hasattr(transport, "inner"):
        transport = transport.inner
    if not hasattr(transport, "connect"):
        raise errors.NotImplementedFeature("this transport cannot hold a connection open")
    return transport


def _target(client: Client, path: str, query: Query | None) -> str:
    return client.prefix + quote(path, path=True) + encode_query(query)


def _json_body(body: Any) -> tuple[dict[str, str], bytes | None]:
    if body is None:
        return {}, None
    import json

    return {"Content-Type": "application/json"}, json.dumps(body).encode()


def _send(transport: Any, request: Request) -> _socket.socket:
    sock: _socket.socket = transport.connect()
    try:
        extra, pieces = body_framing(request.body)
        request.headers.update(extra)
        address = transport.address
        host = "localhost" if address.scheme == "unix" else address.host
        sock.sendall(encode_head(request, host) + b"".join(pieces))
    except OSError as exc:
        sock.close()
        raise errors.Unavailable(f"connection to the sampan daemon failed: {exc.strerror or exc}") from None
    return sock


class Hijacked:
    """The raw two-way stream of an upgraded connection."""

    def __init__(self, sock: _socket.socket, initial: bytes, content_type: str) -> None:
        self.sock = sock
        self._initial = initial
        #: the daemon's media type: multiplexed (8-byte frames) or raw (TTY)
        self.content_type = content_type

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int = 65536) -> bytes:
        """Up to ``size`` bytes of output; b"" at the end of the stream."""
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        try:
            return self.sock.recv(size)
        except ConnectionResetError:
            return b""

    def pending(self) -> bool:
        """Whether bytes already read are waiting (select() would not report them)."""
        return bool(self._initial)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Stdin EOF: half-close, keep reading output."""
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def hijack(
    client: Client, method: str, path: str, *, query: Query | None = None, body: Any = None
) -> Hijacked:
    """Send an upgrade request; return the stream, or raise the daemon's error."""
    transport = _socket_transport(client)
    headers, payload = _json_body(body)
    headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})
    sock = _send(transport, Request(method, _target(client, path, query), headers, payload))
    try:
        source = Source(sock.recv)
        response = parse_response(source)
        if response.status >= 400:
            raise error_from_response(response)
        if response.status not in (101, 200):
            raise errors.Internal(f"unable to upgrade to tcp, received {response.status}")
        return Hijacked(sock, source.take_buffered(), response.headers.get("content-type", ""))
    except BaseException:
        sock.close()
        raise


class Early:
    """A request sent ahead of time whose response headers are read at once and its body later
    (:meth:`response` raises its error).

    ``wait`` before ``start`` depends on it: the daemon sends the headers of a wait only once the
    waiter is registered, so reading them before sending ``start`` means a container that exits
    at once is still seen exiting (the docker CLI's ContainerWait does the same)."""

    def __init__(self, client: Client, method: str, path: str, *, query: Query | None = None) -> None:
        self._client = client
        self._method = method
        self._path = path
        self._query = query
        self._sock: _socket.socket | None = None
        self._response: Response | None = None
        try:
            transport = _socket_transport(client)
        except errors.NotImplementedFeature:
            return  # sent when read
        sock = _send(transport, Request(method, _target(client, path, query), {"Connection": "close"}))
        self._sock = sock
        self._response = parse_response(Source(sock.recv), on_close=sock.close)

    def response(self) -> Response:
        if self._response is None:
            return self._client.request(self._method, self._path, query=self._query)
        response, self._response, self._sock = self._response, None, None
        if response.status >= 400:
            raise error_from_response(response)
        return response

    def json(self) -> Any:
        return first_json(self.response())

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def first_json(response: Response) -> Any:
    """The first JSON document of a body, without waiting for the body's end (the daemon may keep
    a ``wait`` answer open a while after its one result; the docker CLI reads just the one)."""
    import json

    decoder = json.JSONDecoder()
    text = ""
    try:
        for data in response.iter_raw():
            text += data.decode("utf-8", "replace")
            try:
                return decoder.raw_decode(text.lstrip())[0]
            except ValueError:
                continue
    finally:
        response.close()
    return decoder.raw_decode(text.lstrip())[0] if text.strip() else None


def send_early(client: Client, method: str, path: str, *, query: Query | None = None) -> Early:
    return Early(client, method, path, query=query)
