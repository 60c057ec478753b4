"""What every command gets: the global options, the standard streams, and a lazily made client.

The daemon address comes from ``-H/--host``, else ``SAMPAN_HOST``, else the default socket
(``DOCKER_HOST`` is deliberately not read: sampan has its own daemon).  Only when the address is
the default socket and the user is root does a refused connection start a daemon
(:mod:`sampan.cli.autostart`).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from sampan.client.address import DEFAULT_HOST, Address, TLSConfig, parse_host

if TYPE_CHECKING:
    from sampan.client.client import Client
    from sampan.client.transport import Request, Response, Transport


class GlobalOptions:
    __slots__ = ("debug", "hosts", "tls", "tlscacert", "tlscert", "tlskey", "tlsverify")

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.tls = False
        self.tlsverify = False
        self.tlscacert = ""
        self.tlscert = ""
        self.tlskey = ""
        self.debug = False


class Context:
    def __init__(
        self,
        options: GlobalOptions,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        stdin: TextIO | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.options = options
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.stdin = stdin or sys.stdin
        self.environ = os.environ if environ is None else environ
        self._client: Client | None = None

    def address(self) -> Address:
        hosts = self.options.hosts
        if len(hosts) > 1:
            from sampan import errors

            raise errors.InvalidArgument("specify only one -H")
        text = hosts[0] if hosts else self.environ.get("SAMPAN_HOST", "") or DEFAULT_HOST
        return parse_host(text)

    def tls_config(self, address: Address) -> TLSConfig | None:
        o = self.options
        wanted = o.tls or o.tlsverify or bool(o.tlscacert or o.tlscert or o.tlskey)
        if not wanted:
            return None
        if address.scheme != "tcp":
            from sampan import errors

            raise errors.InvalidArgument("--tls options need a tcp:// daemon address")
        return TLSConfig(verify=o.tlsverify, cacert=o.tlscacert, cert=o.tlscert, key=o.tlskey)

    def client(self) -> Client:
        if self._client is None:
            from sampan.client.client import Client
            from sampan.client.transport import SocketTransport

            address = self.address()
            on_unreachable = None
            if address.is_default and os.geteuid() == 0:
                from sampan.cli.autostart import autostart

                def on_unreachable(addr: Address) -> None:
                    autostart(addr, stderr=self.stderr)

            transport: Transport = SocketTransport(
                address, tls=self.tls_config(address), on_unreachable=on_unreachable
            )
            if self.options.debug:
                transport = DebugTransport(transport, self.stderr)
            self._client = Client(transport)
        return self._client



class DebugTransport:
    """``-D``: one line on stderr per request, as docker's debug log does."""

    def __init__(self, inner: Transport, stderr: TextIO) -> None:
        self.inner = inner
        self.stderr = stderr

    def send(self, request: Request) -> Response:
        import time

        start = time.monotonic()
        response = self.inner.send(request)
        ms = (time.monotonic() - start) * 1000
        self.stderr.write(f"DEBU {request.method} {request.target} -> {response.status} ({ms:.1f} ms)\n")
        return response
