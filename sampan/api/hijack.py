"""The hijacked connection of attach and exec start: ``101 UPGRADED``, then a raw byte stream.

A client that sends ``Connection: Upgrade`` and ``Upgrade: tcp`` (the docker CLI, docker-py)
gets ``HTTP/1.1 101 UPGRADED`` and from then on the TCP/unix stream is no longer HTTP: the
client writes the process's stdin, the daemon writes its output (8-byte frames without a TTY,
raw bytes with one).  When the client is done with stdin it *half-closes* its side
(``shutdown(SHUT_WR)``); the daemon sees EOF on :meth:`Stream.read` and keeps writing output
until the process ends, then closes.  A client that does not ask for the upgrade gets a plain
``200`` whose body is the output stream (stdin then comes from the request body, if any).

How the takeover works with aiohttp: the handler writes the 101 head straight to the
transport, takes the bytes aiohttp's parser had already buffered after the request (the
client may send stdin right behind its headers), and swaps the transport's protocol for
:class:`_HijackProtocol` with ``transport.set_protocol()``.  The handler then owns the
connection until :meth:`Stream.close`; it finally returns :func:`finished`, a response that
writes nothing, and aiohttp closes the transport.  ``eof_received`` returning True is what
keeps the transport open for writing after the client's half-close.

Content types (API >= 1.42): ``application/vnd.docker.multiplexed-stream`` without a TTY,
``application/vnd.docker.raw-stream`` with one; older versions always say raw-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from sampan import API_VERSION
from sampan.api import versions

log = logging.getLogger("sampan.api")

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
HIGH_WATER = 1 << 20
# Clients such as docker-py read the 101 head through a buffered HTTP parser and then switch
# to the raw socket: bytes that arrive together with the head are lost to them.  The first
# output is held back this long after the head, as dockerd's slower start-up does by accident.
HEAD_GAP = 0.02


def content_type(api_version: str, *, tty: bool) -> str:
    if tty or versions.before(api_version, "1.42"):
        return RAW
    return MULTIPLEXED


def wants_upgrade(request: web.Request) -> bool:
    upgrade = request.headers.get("Upgrade", "").lower()
    connection = request.headers.get("Connection", "").lower()
    return upgrade == "tcp" and "upgrade" in connection


class Stream:
    """One side of an attach/exec session as the engine sees it: read stdin, write output."""

    async def read(self) -> bytes:  # pragma: no cover - interface
        """The next chunk of stdin; b"" once the client half-closed or went away."""
        raise NotImplementedError

    async def write(self, data: bytes) -> None:  # pragma: no cover - interface
        """Send output; waits while the client is slow.  Raises ConnectionError when gone."""
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - interface
        """No more output: the client sees EOF."""
        raise NotImplementedError

    @property
    def gone(self) -> bool:  # pragma: no cover - interface
        """True once the client has disconnected (not merely half-closed)."""
        raise NotImplementedError

    def response(self) -> web.StreamResponse:  # pragma: no cover - interface
        """What the handler returns once the session is over."""
        raise NotImplementedError


class _HijackProtocol(asyncio.Protocol):
    def __init__(self, transport: asyncio.Transport, tail: bytes) -> None:
        self.transport = transport
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.lost_event = asyncio.Event()
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.reading_paused = False
        if tail:
            self.data_received(tail)

    def data_received(self, data: bytes) -> None:
        self.queue.put_nowait(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self.queue.put_nowait(b"")
        return True  # half-close: keep the transport open for our output

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.eof = True
        self.queue.put_nowait(b"")
        self.can_write.set()
        self.lost_event.set()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()


class _Finished(web.StreamResponse):
    """Returned by a handler whose connection was hijacked: aiohttp writes nothing more."""

    def __init__(self) -> None:
        super().__init__(status=101)
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> Any:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class HijackedStream(Stream):
    def __init__(self, transport: asyncio.Transport, proto: _HijackProtocol) -> None:
        self._transport = transport
        self._proto = proto
        self._closed = False
        self._head_sent = asyncio.get_running_loop().time()
        self._first = True

    async def read(self) -> bytes:
        p = self._proto
        if p.eof and p.queue.empty():
            return b""
        data = await p.queue.get()
        p.buffered -= len(data)
        if p.reading_paused and p.buffered < HIGH_WATER // 2 and not p.lost:
            p.reading_paused = False
            self._transport.resume_reading()
        return data

    async def write(self, data: bytes) -> None:
        if self._proto.lost or self._closed:
            raise ConnectionResetError("the client went away")
        if data:
            if self._first:
                self._first = False
                gap = self._head_sent + HEAD_GAP - asyncio.get_running_loop().time()
                if gap > 0:
                    await asyncio.sleep(gap)
            self._transport.write(data)
            await self._proto.can_write.wait()
            if self._proto.lost:
                raise ConnectionResetError("the client went away")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._proto.lost:
            with contextlib.suppress(OSError, RuntimeError):
                self._transport.close()

    @property
    def gone(self) -> bool:
        return self._proto.lost

    async def wait_gone(self) -> None:
        await self._proto.lost_event.wait()

    def response(self) -> web.StreamResponse:
        return _Finished()


class ResponseStream(Stream):
    """The non-upgraded form: a 200 streamed response; stdin is the request body."""

    def __init__(self, request: web.Request, content_type: str) -> None:
        self._request = request
        self._response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        self._gone = False

    async def start(self) -> None:
        await self._response.prepare(self._request)

    async def read(self) -> bytes:
        if self._gone:
            return b""
        try:
            return await self._request.content.readany()
        except (ConnectionError, asyncio.CancelledError):
            self._gone = True
            return b""
        except Exception:
            return b""

    async def write(self, data: bytes) -> None:
        if data:
            try:
                await self._response.write(data)
            except ConnectionError:
                self._gone = True
                raise

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._response.write_eof()

    @property
    def gone(self) -> bool:
        transport = self._request.transport
        return self._gone or transport is None or transport.is_closing()

    def response(self) -> web.StreamResponse:
        return self._response


async def open_stream(request: web.Request, *, tty: bool, api_version: str = API_VERSION) -> Stream:
    """Answer the request with the 101 (or 200) head and return the session's stream.

    Call it after every check that can still fail with a normal JSON error.
    """
    ctype = content_type(api_version, tty=tty)
    if not wants_upgrade(request):
        stream = ResponseStream(request, ctype)
        await stream.start()
        return stream
    transport = request.transport
    protocol: Any = request.protocol
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away before the upgrade")
    head = (
        "HTTP/1.1 101 UPGRADED\r\n"
        f"Content-Type: {ctype}\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        f"Api-Version: {API_VERSION}\r\n"
        "Ostype: linux\r\n"
        "\r\n"
    )
    transport.write(head.encode())
    # what the client sent behind its request (stdin typed ahead) sits in aiohttp's buffer
    tail = bytes(getattr(protocol, "_message_tail", b"") or b"")
    if hasattr(protocol, "_message_tail"):
        protocol._message_tail = b""
    if not request.content.is_eof():
        tail = bytes(request.content.read_nowait(-1)) + tail
    proto = _HijackProtocol(transport, tail)
    transport.set_protocol(proto)
    with contextlib.suppress(Exception):
        transport.resume_reading()
    return HijackedStream(transport, proto)
