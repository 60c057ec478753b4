"""Pooled registry connections after the registry restarted: every idle one is stale.

A push leaves several keep-alive connections in the pool (parallel uploads); a registry that
restarts closes them all.  The next request must reach the new server on a fresh connection
instead of failing on the second stale one (``sampan login`` then fell back to https and
reported "TLS handshake failed" against a plain-http registry on loopback).
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sampan.distribution.http import Endpoint, RegistryClient


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    """Closes its keep-alive connections when it stops, as a restarted registry does."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.conns: list[socket.socket] = []

    def process_request(self, request: Any, client_address: Any) -> None:
        self.conns.append(request)
        super().process_request(request, client_address)


@contextmanager
def server(port: int = 0) -> Iterator[Server]:
    srv = Server(port)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        for conn in srv.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        t.join()


def test_a_restarted_registry_is_reached_on_a_fresh_connection() -> None:
    client = RegistryClient()
    with server() as srv:
        port = srv.server_address[1]
        ep = Endpoint("http", f"127.0.0.1:{port}", verify=False)
        first = [client.request(ep, "GET", "/v2/") for _ in range(4)]  # four connections at once
        for r in first:
            assert r.status == 200 and r.json() == {}
        assert len(client._pool[("http", ep.host, False)]) == 4
    # the registry is gone (its connections with it) and back on the same port
    with server(port):
        r = client.request(ep, "GET", "/v2/")
        assert r.status == 200 and r.json() == {}
    client.close()
