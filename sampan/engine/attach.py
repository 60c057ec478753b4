"""Attaching to a container's stdio, including before it starts (``docker run`` attaches
first, then starts, so that no output is lost).

A running container: a new connection to its shim (``ShimClient.attach``).  A container that
is not running yet: the request waits in :attr:`AttachService.pending`; the container
service runs the start hook :meth:`AttachService.on_start` between the shim's create and its
start, which connects every waiting request to the new shim, so they see the first byte.

A client's stdin EOF (half-close, or the connection going away) closes the container's stdin
when it is ``StdinOnce`` without a TTY (as moby: with a TTY stdin stays open, and the docker
CLI detaches by simply closing the connection); typing the detach keys ends the session and leaves stdin open.

The socket carries Docker's own wire format (8-byte frames without a TTY, raw with one), so
the API relays it untouched.  :class:`DetachScanner` implements detach keys (default
``ctrl-p,ctrl-q``) on the daemon side: it passes stdin through and reports when the
sequence was typed (a partial match is held back until it is known not to be the sequence).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sampan import errors

if TYPE_CHECKING:
    from sampan.engine.containers import ContainerService
    from sampan.engine.model import Container
    from sampan.runtime.shimproto import ShimClient

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(text: str) -> bytes:
    """Docker's ``--detach-keys`` syntax: ``ctrl-<c>`` or single characters, comma-separated."""
    text = text or DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in text.split(","):
        k = key.strip()
        low = k.lower()
        if low.startswith("ctrl-") and len(k) == 6:
            ch = low[5]
            table = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in table:
                out.append(table[ch])
            else:
                raise errors.InvalidArgument(f"Unknown character: '{k}'")
        elif len(k) == 1:
            out.append(ord(k))
        else:
            raise errors.InvalidArgument(f"Unknown character: '{k}'")
    return bytes(out)


class DetachScanner:
    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, whether the detach sequence was completed)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            candidate = self._held + bytes([b])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    self._held = b""
                    return bytes(out), True
                self._held = candidate
                continue
            out += self._held
            self._held = b""
            if self.keys.startswith(bytes([b])):
                self._held = bytes([b])
            else:
                out.append(b)
        return bytes(out), False

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held


@dataclass
class AttachRequest:
    container_id: str
    stdin: bool
    stdout: bool
    stderr: bool
    close_stdin: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[socket.socket] = field(repr=False)


class AttachService:
    def __init__(self, containers: ContainerService) -> None:
        self.containers = containers
        self.pending: list[AttachRequest] = []
        self._lock = threading.Lock()
        containers.start_hooks.append(self.on_start)

    def on_start(self, c: Container, client: ShimClient) -> None:
        """Start hook (a worker thread, before the shim's start): connect waiting requests."""
        with self._lock:
            mine = [r for r in self.pending if r.container_id == c.id]
            self.pending = [r for r in self.pending if r.container_id != c.id]
        for r in mine:
            try:
                sock = client.attach(r.stdin, stdout=r.stdout, stderr=r.stderr, close_stdin=r.close_stdin)
            except errors.SampanError as exc:
                r.loop.call_soon_threadsafe(_set_exception, r.future, exc)
                continue
            r.loop.call_soon_threadsafe(_set_result, r.future, sock)

    async def open(
        self, name: str, *, stdin: bool, stdout: bool, stderr: bool, wait_for_start: bool = True
    ) -> tuple[Container, socket.socket | None]:
        """A socket to the container's stdio; for a container that is not running, wait for
        its next start (``wait_for_start``) or return None."""
        c = self.containers.get(name)
        # never the shim's own close-on-EOF: a detach also closes the connection, and must leave
        # stdin open; StdinOnce is applied by close_stdin() when the client's stdin really ends
        close_stdin = False
        stdin = stdin and c.spec.open_stdin
        if c.state.running and not c.state.restarting:
            try:
                client = self.containers.runner.client(c.id)
                sock = await asyncio.to_thread(
                    client.attach, stdin, stdout=stdout, stderr=stderr, close_stdin=close_stdin
                )
                return c, sock
            except errors.Unavailable:
                if c.state.running:
                    raise
        if not wait_for_start:
            return c, None
        loop = asyncio.get_running_loop()
        req = AttachRequest(c.id, stdin, stdout, stderr, close_stdin, loop, loop.create_future())
        with self._lock:
            self.pending.append(req)
        try:
            while True:  # until it starts; a removed container fails the request
                try:
                    return c, await asyncio.wait_for(asyncio.shield(req.future), 0.5)
                except TimeoutError:
                    self.containers.get(c.id)
        finally:
            with self._lock:
                if req in self.pending:
                    self.pending.remove(req)
            if not req.future.done():
                req.future.cancel()

    async def close_stdin(self, container_id: str) -> None:
        """The attached client's stdin ended: close the container's (``StdinOnce``)."""
        try:
            c = self.containers.get(container_id)
            if c.spec.stdin_once and not c.spec.tty and c.state.running:  # moby: never with a TTY
                await asyncio.to_thread(self.containers.runner.client(c.id).close_stdin)
        except errors.SampanError:
            pass  # it exited meanwhile

    def cancel(self, container_id: str) -> None:
        """The container is gone: fail the requests still waiting for it."""
        with self._lock:
            mine = [r for r in self.pending if r.container_id == container_id]
            self.pending = [r for r in self.pending if r.container_id != container_id]
        for r in mine:
            r.loop.call_soon_threadsafe(_set_exception, r.future, errors.NoSuchContainer(container_id))


def _set_result(fut: asyncio.Future[socket.socket], sock: socket.socket) -> None:
    if fut.done():
        with contextlib.suppress(OSError):
            sock.close()
    else:
        fut.set_result(sock)


def _set_exception(fut: asyncio.Future[socket.socket], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
