"""Streaming responses and request bodies of the Engine API.

* :class:`JSONStream` is Docker's newline-delimited JSON progress stream (load, import, later
  pull, push and build): a 200 header, then one JSON message per line; an error that happens
  after the header is sent *in band* as ``{"errorDetail": {"message": m}, "error": m}``.
  Blocking work runs in a worker thread with :meth:`JSONStream.run`, whose progress callback
  may be called from that thread; messages are written as they arrive.
* :func:`response_writer` gives a file object that a worker thread writes a raw body into (a tar
  for ``/images/get``); each write waits until the event loop has sent it, so a slow client
  slows the writer instead of filling memory.
* :func:`body_reader` gives a worker thread the request body (a 200 MiB+ tar) as a file that
  reads from the socket as the store consumes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from aiohttp import ClientPayloadError, web

from sampan.errors import InvalidArgument, SampanError

log = logging.getLogger("sampan.api")

T = TypeVar("T")
CHUNK = 1 << 20


def error_message(exc: BaseException) -> str:
    if isinstance(exc, SampanError):
        return exc.message
    return f"internal error: {type(exc).__name__}: {exc}"


class JSONStream:
    """A newline-delimited JSON response; see the module docstring."""

    def __init__(self, request: web.Request, *, content_type: str = "application/json") -> None:
        self.request = request
        self.response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        self.failed = False

    async def start(self) -> None:
        if not self.response.prepared:
            await self.response.prepare(self.request)

    async def send(self, message: dict[str, Any]) -> None:
        await self.start()
        await self.response.write(json.dumps(message, separators=(",", ":")).encode() + b"\r\n")

    async def send_error(self, exc: BaseException) -> None:
        """Report ``exc`` in band (the status line already said 200)."""
        self.failed = True
        message = error_message(exc)
        if not isinstance(exc, SampanError):
            log.error("%s %s failed", self.request.method, self.request.path, exc_info=exc)
        detail: dict[str, Any] = {"message": message}
        code = getattr(exc, "exit_code", None)  # a failed build step's status (dockerd's JSONError.Code)
        if isinstance(code, int):
            detail = {"code": code, "message": message}
        try:
            await self.send({"errorDetail": detail, "error": message})
        except ConnectionError:
            log.debug("%s %s: client gone before the error was sent: %s",
                      self.request.method, self.request.path, message)

    async def finish(self) -> web.StreamResponse:
        try:
            await self.start()
            await self.response.write_eof()
        except ConnectionError:
            log.debug("%s %s: client gone before the end", self.request.method, self.request.path)
        return self.response

    async def run(self, fn: Callable[[Callable[[dict[str, Any]], None]], T]) -> T:
        """Run ``fn(on_progress)`` in a thread, streaming what it reports; return its result."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def on_progress(message: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, message)

        task = asyncio.ensure_future(asyncio.to_thread(fn, on_progress))
        try:
            while not task.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await self.send(getter.result())
                else:
                    getter.cancel()
            await asyncio.sleep(0)  # let callbacks scheduled by the thread's last calls run
            while not queue.empty():
                await self.send(queue.get_nowait())
        except BaseException:
            # the client went away: let the thread finish, then re-raise
            if not task.done():
                await asyncio.shield(asyncio.wait({task}))
            raise
        return task.result()


class _RawResponseWriter(io.RawIOBase):
    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        self._response = response
        self._loop = loop
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            asyncio.run_coroutine_threadsafe(self._response.write(chunk), self._loop).result()
            self.written += len(chunk)
        return len(chunk)


def response_writer(response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> BinaryIO:
    """A buffered, blocking file that writes into ``response``; use from a worker thread."""
    return io.BufferedWriter(_RawResponseWriter(response, loop), buffer_size=CHUNK)  # type: ignore[return-value]


class _RawBodyReader(io.RawIOBase):
    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self._content = request.content
        self._loop = loop
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        if not want:
            return 0
        try:
            data = asyncio.run_coroutine_threadsafe(self._content.read(want), self._loop).result()
        except (ConnectionError, ClientPayloadError, concurrent.futures.CancelledError) as exc:
            raise InvalidArgument(
                f"request body: the client went away after {self.received} bytes ({type(exc).__name__})"
            ) from None
        buffer[: len(data)] = data
        self.received += len(data)
        return len(data)


def body_reader(request: web.Request, loop: asyncio.AbstractEventLoop) -> BinaryIO:
    """The request body as a blocking, buffered, non-seekable file for a worker thread: the
    store reads a 200 MiB archive as it arrives, without spooling it first."""
    return io.BufferedReader(_RawBodyReader(request, loop), buffer_size=CHUNK)  # type: ignore[return-value]
