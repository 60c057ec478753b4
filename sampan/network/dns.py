"""The embedded DNS server of user-defined networks, listening on 127.0.0.11:53 in each container.

Choice: as Docker, the server listens *inside each container's network namespace* on
``127.0.0.11`` (UDP and TCP), not on the bridge gateway.  Reasons: nothing on the host's port 53
(dnsmasq, systemd-resolved, another daemon) can collide with it; a host firewall's input rules
do not apply to it; and every query arrives on a socket that belongs to one container, so the
answer uses that container's view (the networks it is attached to), as Docker's does.  The
sockets are created by a thread that has entered the namespace (``netns.entered``) and are then
served by one asyncio loop on a dedicated thread (so the daemon's loop and the blocking
network service need not share a loop).

Names: a query for a container name, a network alias or a short ID answers with that
container's addresses on the networks the asking container shares with it (``Resolver``,
given by the engine).  AAAA answers with its IPv6 addresses on ``--ipv6`` networks (none
otherwise: an empty answer, as Docker's).  Any other name is forwarded, as received, to the host's resolvers (from the host's
``/etc/resolv.conf``) over UDP, or TCP for TCP queries; no answer in 3 s is SERVFAIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sampan import errors
from sampan.network import netns as netnsmod

ADDRESS = "127.0.0.11"
PORT = 53
TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
FORWARD_TIMEOUT = 3.0

#: (name asked, lower case without the final dot) -> addresses, or None when not ours
Resolver = Callable[[str], "list[str] | None"]


def parse_question(packet: bytes) -> tuple[int, str, int, int, int]:
    """(id, name, qtype, qclass, end offset of the question) of a query."""
    if len(packet) < 12:
        raise ValueError("short DNS header")
    qid, _flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError("want exactly one question")
    labels: list[str] = []
    pos = 12
    while True:
        if pos >= len(packet):
            raise ValueError("truncated name")
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(packet):
        raise ValueError("truncated question")
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return qid, ".".join(labels).lower(), qtype, qclass, pos + 4


def build_query(name: str, qtype: int = TYPE_A, qid: int = 0x1234) -> bytes:
    """A recursion-desired query (tests and health checks)."""
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, CLASS_IN)


def answer(packet: bytes, addresses: Sequence[str], *, rcode: int = 0) -> bytes:
    """A response to ``packet`` with A (or AAAA) records for those ``addresses`` of the family asked (TTL 600, as Docker's)."""
    qid, _name, qtype, _qclass, end = parse_question(packet)
    rd = struct.unpack("!H", packet[2:4])[0] & 0x0100
    want = {TYPE_A: 4, TYPE_AAAA: 6}.get(qtype)
    records = [ipaddress.ip_address(a) for a in addresses]
    records = [a for a in records if a.version == want]
    flags = 0x8000 | 0x0400 | rd | 0x0080 | rcode  # QR, AA, RD copied, RA
    out = struct.pack("!HHHHHH", qid, flags, 1, len(records), 0, 0) + packet[12:end]
    for addr in records:
        out += struct.pack("!HHHIH", 0xC00C, qtype, CLASS_IN, 600, len(addr.packed)) + addr.packed
    return out


def parse_answers(packet: bytes) -> list[str]:
    """The A and AAAA addresses of a response (tests)."""
    _qid, _name, _qtype, _qclass, pos = parse_question(packet)
    count = struct.unpack("!H", packet[6:8])[0]
    out = []
    for _ in range(count):
        if packet[pos] & 0xC0:
            pos += 2
        else:
            while packet[pos]:
                pos += packet[pos] + 1
            pos += 1
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", packet[pos:pos + 10])
        pos += 10
        if rtype == TYPE_A and rdlen == 4:
            out.append(str(ipaddress.IPv4Address(packet[pos:pos + 4])))
        elif rtype == TYPE_AAAA and rdlen == 16:
            out.append(str(ipaddress.IPv6Address(packet[pos:pos + 16])))
        pos += rdlen
    return out


def rcode_of(packet: bytes) -> int:
    return int(struct.unpack("!H", packet[2:4])[0]) & 0xF


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, resolver: Resolver) -> None:
        self.server = server
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a _SelectorDatagramTransport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        response = await self.server.respond(data, self.resolver, tcp=False)
        if response is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(response, addr)


class DnsServer:
    """One asyncio loop on its own thread serving every container's 127.0.0.11."""

    def __init__(self, upstreams: Sequence[str] = (), *, upstream_port: int = PORT) -> None:
        self.upstreams = [u for u in upstreams if _ipv4(u)]
        self.upstream_port = upstream_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sampan-dns", daemon=True)
        self._thread.start()
        self._served: dict[str, list[Callable[[], None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ per container

    def serve(self, key: str, netns: Path, resolver: Resolver) -> None:
        """Listen on 127.0.0.11:53 (UDP and TCP) inside ``netns`` for container ``key``
        (already listening: nothing to do, the resolver reads the container's networks per query)."""
        if key in self._served:
            return
        with netnsmod.entered(netns):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                for s in (udp, tcp):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.setblocking(False)
                    s.bind((ADDRESS, PORT))
                tcp.listen(16)
            except OSError as exc:
                udp.close()
                tcp.close()
                raise errors.from_oserror(exc, f"embedded DNS: listen on {ADDRESS}:{PORT} in {netns}") from exc
        fut: Future[list[Callable[[], None]]] = asyncio.run_coroutine_threadsafe(
            self._start(udp, tcp, resolver), self._loop)
        self._served[key] = fut.result(timeout=5)

    async def _start(self, udp: socket.socket, tcp: socket.socket, resolver: Resolver) -> list[Callable[[], None]]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self, resolver), sock=udp)

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while True:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    response = await self.respond(await reader.readexactly(size), resolver, tcp=True)
                    if response is None:
                        break
                    writer.write(struct.pack("!H", len(response)) + response)
                    await writer.drain()
            writer.close()

        server = await asyncio.start_server(client, sock=tcp)
        return [transport.close, server.close]

    def stop_serving(self, key: str) -> None:
        closers = self._served.pop(key, None)
        if closers:

            async def close_all() -> None:
                for close in closers:
                    close()

            # wait: a socket still open keeps the container's network namespace alive
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=5)

    def close(self) -> None:
        for key in list(self._served):
            self.stop_serving(key)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    # ------------------------------------------------------------------ answers

    async def respond(self, packet: bytes, resolver: Resolver, *, tcp: bool) -> bytes | None:
        try:
            _qid, name, qtype, qclass, _end = parse_question(packet)
        except ValueError:
            return None
        if qclass == CLASS_IN and qtype in (TYPE_A, TYPE_AAAA):
            found = resolver(name)
            if found is not None:
                return answer(packet, found)
        return await self.forward(packet, tcp=tcp)

    async def forward(self, packet: bytes, *, tcp: bool) -> bytes:
        for upstream in self.upstreams:
            with contextlib.suppress(OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                if tcp:
                    return await asyncio.wait_for(self._forward_tcp(packet, upstream), FORWARD_TIMEOUT)
                return await asyncio.wait_for(self._forward_udp(packet, upstream), FORWARD_TIMEOUT)
        return answer(packet, [], rcode=2)  # SERVFAIL

    async def _forward_udp(self, packet: bytes, upstream: str) -> bytes:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()

        class _Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                if not done.done():
                    done.set_result(data)

            def error_received(self, exc: Exception) -> None:
                if not done.done():
                    done.set_exception(exc)

        transport, _ = await loop.create_datagram_endpoint(_Client, remote_addr=(upstream, self.upstream_port))
        try:
            transport.sendto(packet)
            return await done
        finally:
            transport.close()

    async def _forward_tcp(self, packet: bytes, upstream: str) -> bytes:
        reader, writer = await asyncio.open_connection(upstream, self.upstream_port)
        try:
            writer.write(struct.pack("!H", len(packet)) + packet)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(size)
        finally:
            writer.close()


def _ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False
