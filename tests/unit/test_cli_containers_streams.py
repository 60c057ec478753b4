"""Hijacked streams and the run/exec call sequences, against a fake engine on a unix socket.

The fake engine answers like the Engine API does: ``101 UPGRADED`` then raw bytes for attach and
exec start, and it holds the answer to ``wait`` until the container "exits" (after start), so a
client that waited for it before sending start would hang.
"""

from __future__ import annotations

import io
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sampan.cli.attach import Demux, EscapeProxy, detach_sequence, session
from sampan.cli.context import Context, GlobalOptions
from sampan.cli.main import run
from sampan.client.hijack import Hijacked

Route = Callable[[str, str, bytes, socket.socket], bool]


def frame(kind: int, data: bytes) -> bytes:
    return bytes((kind, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


def respond(sock: socket.socket, status: int, body: Any = None) -> None:
    payload = b"" if body is None else json.dumps(body).encode()
    reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found", 400: "Bad Request"}.get(status, "X")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    sock.sendall(head.encode() + payload)


def wait_headers(sock: socket.socket) -> None:
    """A wait's headers, sent at once as the daemon does once the waiter is registered; the
    body (the exit status) follows when the container exits, then the connection closes."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")


def upgrade(sock: socket.socket, content_type: str = "application/vnd.docker.multiplexed-stream") -> None:
    sock.sendall(f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {content_type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())


class FakeEngine:
    def __init__(self, path: Path, route: Callable[[str, str, bytes, socket.socket], None]) -> None:
        self.log: list[str] = []
        engine = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                length = int(headers.get("content-length", "0"))
                while len(body) < length:
                    body += sock.recv(65536)
                engine.log.append(f"{method} {target}")
                route(method, target, body, sock)

        self.server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sock_path() -> Iterator[Path]:
    import shutil
    import tempfile

    short = tempfile.mkdtemp(prefix="w2c-", dir="/tmp")  # unix socket paths are limited to 107 bytes
    try:
        yield Path(short) / "e.sock"
    finally:
        shutil.rmtree(short, ignore_errors=True)


def cli(path: Path, argv: list[str], stdin: Any = None) -> tuple[int, str, str]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    def make(o: GlobalOptions) -> Context:
        return Context(o, stdout=out, stderr=err, stdin=stdin or io.StringIO(""), environ={})

    code = run(["-H", f"unix://{path}", *argv], make_context=make)
    out.flush()
    err.flush()
    return code, out.buffer.getvalue().decode(), err.buffer.getvalue().decode()  # type: ignore[attr-defined]


def test_run_attaches_waits_before_start_and_returns_the_exit_status(sock_path: Path) -> None:
    started = threading.Event()
    exited = threading.Event()
    created: list[Any] = []

    def route(method: str, target: str, body: bytes, sock: socket.socket) -> None:
        path = target.split("?")[0]
        if path == "/containers/create":
            created.append(json.loads(body))
            respond(sock, 201, {"Id": "c1", "Warnings": []})
        elif path == "/containers/c1/attach":
            upgrade(sock)
            started.wait(5)
            sock.sendall(frame(1, b"out\n") + frame(2, b"err\n")[:5])
            sock.sendall(frame(2, b"err\n")[5:])
            sock.close()
            exited.set()
        elif path == "/containers/c1/wait":
            assert "condition=removed" in target
            wait_headers(sock)
            exited.wait(5)
            sock.sendall(json.dumps({"StatusCode": 3}).encode())
            sock.close()
        elif path == "/containers/c1/start":
            assert not exited.is_set()
            started.set()
            respond(sock, 204)

    engine = FakeEngine(sock_path, route)
    try:
        code, out, err = cli(sock_path, ["run", "--rm", "--name", "x", "busybox", "sh", "-c", "exit 3"])
    finally:
        engine.close()
    assert (code, out, err) == (3, "out\n", "err\n"), err
    assert [e.split("?")[0] for e in engine.log] == [
        "POST /containers/create", "POST /containers/c1/attach", "POST /containers/c1/wait", "POST /containers/c1/start"]
    assert engine.log[0] == "POST /containers/create?name=x"
    assert created[0]["Cmd"] == ["sh", "-c", "exit 3"] and created[0]["HostConfig"]["AutoRemove"] is True


def test_run_i_sends_stdin_then_half_closes_and_output_keeps_flowing(sock_path: Path) -> None:
    def route(method: str, target: str, body: bytes, sock: socket.socket) -> None:
        path = target.split("?")[0]
        if path == "/containers/create":
            respond(sock, 201, {"Id": "c1"})
        elif path == "/containers/c1/attach":
            assert "stdin=1" in target
            upgrade(sock)
            got = b""
            while chunk := sock.recv(65536):  # until the client's half-close
                got += chunk
            sock.sendall(frame(1, got.upper()))
            sock.close()
        elif path == "/containers/c1/wait":
            respond(sock, 200, {"StatusCode": 0})
        elif path == "/containers/c1/start":
            respond(sock, 204)

    r, w = os.pipe()
    os.write(w, b"hello stdin\n")
    os.close(w)
    engine = FakeEngine(sock_path, route)
    try:
        with os.fdopen(r, "rb") as stdin:
            code, out, _ = cli(sock_path, ["run", "-i", "busybox", "cat"], stdin=stdin)
    finally:
        engine.close()
    assert (code, out) == (0, "HELLO STDIN\n")


def test_missing_image_pull_error_exits_125(sock_path: Path) -> None:
    def route(method: str, target: str, body: bytes, sock: socket.socket) -> None:
        path = target.split("?")[0]
        if path == "/containers/create":
            respond(sock, 404, {"message": "No such image: nope:latest"})
        elif path == "/images/create":
            assert "fromImage=nope" in target and "tag=latest" in target
            line = json.dumps({"errorDetail": {"message": "pull access denied for nope"}, "error": "pull access denied for nope"})
            respond_raw = f"HTTP/1.1 200 OK\r\nContent-Length: {len(line) + 1}\r\n\r\n{line}\n"
            sock.sendall(respond_raw.encode())

    engine = FakeEngine(sock_path, route)
    try:
        code, out, err = cli(sock_path, ["run", "nope"])
    finally:
        engine.close()
    assert code == 125 and out == ""
    assert err == "Unable to find image 'nope:latest' locally\nError response from daemon: pull access denied for nope\n"


@pytest.mark.parametrize(("message", "code"), [
    ('failed to create task: exec: "nope": executable file not found in $PATH', 127),
    ("exec /etc/passwd: permission denied", 126),
    ("cgroup setup failed", 125),
])
def test_start_failures_map_to_docker_exit_codes(sock_path: Path, message: str, code: int) -> None:
    def route(method: str, target: str, body: bytes, sock: socket.socket) -> None:
        path = target.split("?")[0]
        if path == "/containers/create":
            respond(sock, 201, {"Id": "c1"})
        elif path == "/containers/c1/attach":
            upgrade(sock)
            sock.recv(10)  # until the client closes
            sock.close()
        elif path == "/containers/c1/wait":
            wait_headers(sock)
            sock.recv(10)
        elif path == "/containers/c1/start":
            respond(sock, 400, {"message": message})

    engine = FakeEngine(sock_path, route)
    try:
        rc, _, err = cli(sock_path, ["run", "busybox", "nope"])
    finally:
        engine.close()
    assert rc == code and err == f"Error response from daemon: {message}\n"


def test_exec_sequence_and_exit_code(sock_path: Path) -> None:
    bodies: dict[str, Any] = {}

    def route(method: str, target: str, body: bytes, sock: socket.socket) -> None:
        path = target.split("?")[0]
        if path == "/containers/web/exec":
            bodies["create"] = json.loads(body)
            respond(sock, 201, {"Id": "e1"})
        elif path == "/exec/e1/start":
            bodies["start"] = json.loads(body)
            upgrade(sock)
            sock.sendall(frame(1, b"hi\n"))
            sock.close()
        elif path == "/exec/e1/json":
            respond(sock, 200, {"ExitCode": 7, "Running": False})

    engine = FakeEngine(sock_path, route)
    try:
        code, out, _ = cli(sock_path, ["exec", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "web", "sh", "-c", "exit 7"])
    finally:
        engine.close()
    assert (code, out) == (7, "hi\n")
    assert bodies["create"]["Cmd"] == ["sh", "-c", "exit 7"] and bodies["create"]["Env"] == ["A=1"]
    assert bodies["create"]["WorkingDir"] == "/tmp" and bodies["create"]["User"] == "nobody"
    assert bodies["create"]["AttachStdout"] and not bodies["create"]["AttachStdin"]
    assert bodies["start"] == {"Detach": False, "Tty": False}


def test_tty_session_detach_keys_end_it_and_are_passed_on_for_the_daemon() -> None:
    ours, theirs = socket.socketpair()
    got: list[bytes] = []

    def daemon() -> None:  # reads until the detach keys, says goodbye and closes, as sampand does
        data = b""
        while not data.endswith(b"\x10\x11"):
            data += theirs.recv(100)
        got.append(data)
        theirs.sendall(b"\r\n")
        theirs.close()

    peer = threading.Thread(target=daemon)
    peer.start()
    r, w = os.pipe()
    os.write(w, b"ab\x10x\x10\x11never sent")
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    try:
        with os.fdopen(r, "rb") as stdin:
            detached = session(Hijacked(ours, b"", ""), tty=True, stdin=stdin, stdout=out, stderr=out)
        peer.join(5)
        assert detached is True
        assert got == [b"ab\x10x\x10\x11"]
        assert out.buffer.getvalue() == b"\r\n"  # type: ignore[attr-defined]
    finally:
        os.close(w)
        ours.close()


def test_session_writes_bytes_already_read_with_the_headers() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(frame(1, b"world"))
    theirs.close()
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    try:
        assert session(Hijacked(ours, frame(1, b"hello "), ""), tty=False, stdout=out, stderr=out) is False
    finally:
        ours.close()
    assert out.buffer.getvalue() == b"hello world"  # type: ignore[attr-defined]


def test_demux_across_reads_and_escape_proxy() -> None:
    demux = Demux()
    data = frame(1, b"abc") + frame(2, b"") + frame(2, b"de")
    got = [piece for i in range(len(data)) for piece in demux.feed(data[i : i + 1])]
    assert got == [(1, b"abc"), (2, b""), (2, b"de")]
    proxy = EscapeProxy(detach_sequence("ctrl-p,ctrl-q"))
    assert proxy.feed(b"a\x10") == (b"a", False)
    assert proxy.feed(b"b") == (b"\x10b", False)
    assert proxy.feed(b"\x10\x11") == (b"", True)
    assert detach_sequence("ctrl-a,x,ctrl-@") == b"\x01x\x00"
    with pytest.raises(Exception, match="invalid detach keys"):
        detach_sequence("ctrl-ab")
