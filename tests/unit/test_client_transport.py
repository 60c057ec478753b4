"""The hand-written HTTP/1.1 transport: response framing, request bodies, a real unix socket."""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sampan import errors
from sampan.client.address import parse_host
from sampan.client.transport import (
    DaemonUnreachable,
    Request,
    SocketTransport,
    Source,
    body_framing,
    parse_response,
)

pytestmark = pytest.mark.timeout(30)


def source(data: bytes, step: int = 3) -> Source:
    """A Source fed ``step`` bytes at a time, to exercise every buffer boundary."""
    view = memoryview(data)
    pos = 0

    def recv(_n: int) -> bytes:
        nonlocal pos
        piece = bytes(view[pos : pos + step])
        pos += len(piece)
        return piece

    return Source(recv)


@pytest.mark.parametrize("step", [1, 2, 7, 4096])
def test_chunked_body_is_decoded(step: int) -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        b"5\r\nhello\r\nc;ext=1\r\n, wide world\r\n0\r\nTrailer: x\r\n\r\n"
    )
    resp = parse_response(source(raw, step))
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.read() == b"hello, wide world"


def test_content_length_body_stops_at_length() -> None:
    resp = parse_response(source(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nbodyEXTRA"))
    assert (resp.status, resp.reason, resp.read()) == (404, "Not Found", b"body")


def test_body_until_close_and_empty_bodies() -> None:
    assert parse_response(source(b"HTTP/1.1 200 OK\r\n\r\nto the end")).read() == b"to the end"
    assert parse_response(source(b"HTTP/1.1 204 No Content\r\n\r\n")).read() == b""
    head = parse_response(source(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), head=True)
    assert head.read() == b""


def test_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    resp = parse_response(source(raw))
    assert (resp.status, resp.read()) == (201, b"ok")


def test_json_lines_split_across_chunks() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n7\r\n\":1}\n{}\r\n1\r\n\n\r\n0\r\n\r\n"
    assert list(parse_response(source(raw)).iter_lines()) == [b'{"a":1}', b"{}"]


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_malformed_responses_are_clear_errors(raw: bytes) -> None:
    with pytest.raises(errors.SampanError, match="malformed HTTP response"):
        parse_response(source(raw)).read()


def test_truncated_bodies_are_unavailable() -> None:
    with pytest.raises(errors.Unavailable):
        parse_response(source(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")).read()
    with pytest.raises(errors.Unavailable):
        parse_response(source(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc")).read()
    with pytest.raises(errors.Unavailable):
        parse_response(source(b""))


def test_body_framing(tmp_path: Path) -> None:
    headers, pieces = body_framing(b"abc")
    assert headers == {"Content-Length": "3"} and b"".join(pieces) == b"abc"
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as f:
        f.read(4)
        headers, pieces = body_framing(f)
        assert headers == {"Content-Length": "6"} and b"".join(pieces) == b"456789"
    headers, pieces = body_framing(io.BytesIO(b"xyz"))  # no fileno: chunked
    assert headers == {"Transfer-Encoding": "chunked"}
    assert b"".join(pieces) == b"3\r\nxyz\r\n0\r\n\r\n"
    headers, pieces = body_framing(iter([b"ab", b"", b"c"]))
    assert b"".join(pieces) == b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"


# ---------------------------------------------------------------- a real unix socket


class _UnixServer(ThreadingHTTPServer):
    address_family = socket.AF_UNIX

    def server_bind(self) -> None:
        self.socket.bind(self.server_address)

    def get_request(self):  # type: ignore[no-untyped-def]
        conn, _ = self.socket.accept()
        return conn, ("local", 0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        body = self._body()
        reply = b"%s %s %d" % (self.command.encode(), self.path.encode(), len(body))
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(reply), 5):
            piece = reply[i : i + 5]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        body = b'{"message":"No such image: nope:latest"}'
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "stub.sock")
    server = _UnixServer(path, _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_socket_transport_streams_a_pipe_body_chunked(stub: str) -> None:
    transport = SocketTransport(parse_host("unix://" + stub))
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(b"x" * 300_000)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(r, "rb") as body:
        resp = transport.send(Request("POST", "/images/load?quiet=1", {}, body))
        assert resp.read() == b"POST /images/load?quiet=1 300000"
    writer.join()


def test_socket_transport_returns_error_responses(stub: str) -> None:
    resp = SocketTransport(parse_host(stub)).send(Request("GET", "/images/nope/json"))
    assert resp.status == 404 and b"No such image" in resp.read()


def test_unreachable_daemon_and_the_autostart_hook(tmp_path: Path, stub: str) -> None:
    missing = parse_host(f"unix://{tmp_path}/missing.sock")
    with pytest.raises(DaemonUnreachable, match="Is the sampan daemon running"):
        SocketTransport(missing).send(Request("GET", "/_ping"))
    calls = []

    def start(addr: object) -> None:  # "starts a daemon": here, points the transport at the stub
        calls.append(addr)
        transport.address = parse_host(stub)

    transport = SocketTransport(missing, on_unreachable=start)
    assert transport.send(Request("POST", "/x", {}, b"ab")).read() == b"POST /x 2"
    assert calls == [missing]


def test_parse_host_forms() -> None:
    assert str(parse_host("unix:///run/x.sock")) == "unix:///run/x.sock"
    assert str(parse_host("/run/x.sock")) == "unix:///run/x.sock"
    assert str(parse_host("tcp://10.0.0.1:2376")) == "tcp://10.0.0.1:2376"
    assert str(parse_host("localhost:2375")) == "tcp://localhost:2375"
    assert str(parse_host("tcp://[::1]:2376")) == "tcp://[::1]:2376"
    assert parse_host("").is_default
    for bad in ("unix://relative", "tcp://host", "tcp://h:99999", "ftp://h:1"):
        with pytest.raises(errors.InvalidArgument):
            parse_host(bad)


def test_socket_transport_sends_a_regular_file_with_its_length(stub: str, tmp_path: Path) -> None:
    path = tmp_path / "layer.tar"
    path.write_bytes(os.urandom(3_000_000))
    transport = SocketTransport(parse_host(stub), timeout=10)
    with open(path, "rb") as body:
        body.read(1000)
        resp = transport.send(Request("POST", "/images/load", {}, body))
        assert resp.read() == b"POST /images/load 2999000"
        assert body.tell() == 3_000_000
