"""The shim's wire protocol and client, against an in-process fake shim (no root)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sampan import errors
from sampan.runtime import shimproto as proto
from sampan.runtime.shimdriver import ShimConfig, last_error


def test_frames_roundtrip_and_partial() -> None:
    data = proto.frame(proto.STDOUT, b"hello") + proto.frame(proto.STDERR, b"")
    data += proto.frame(proto.STDOUT, b"x" * 70000)
    assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x05"
    buf = bytearray(data[:-3])
    assert proto.read_frames(buf) == [(1, b"hello"), (2, b"")]
    buf += data[-3:]
    assert proto.read_frames(buf) == [(1, b"x" * 70000)]
    assert buf == b""


def test_errors_cross_the_socket_by_class() -> None:
    reply = proto.error_reply(errors.ContainerNotRunning("container c1 is not running"))
    assert reply == {
        "ok": False,
        "error": "container c1 is not running",
        "kind": "ContainerNotRunning",
    }
    with pytest.raises(errors.ContainerNotRunning, match="c1 is not running"):
        proto.raise_for(reply)
    with pytest.raises(errors.Internal, match="boom"):
        proto.raise_for(proto.error_reply(RuntimeError("boom")))
    with pytest.raises(errors.NoSuchContainer) as info:  # a constructor with its own wording
        proto.raise_for({"ok": False, "error": "No such container: c9", "kind": "NoSuchContainer"})
    assert str(info.value) == "No such container: c9"
    with pytest.raises(errors.Internal):
        proto.raise_for({"ok": False, "error": "x", "kind": "__class__"})
    assert proto.raise_for({"ok": True, "a": 1}) == {"ok": True, "a": 1}


def test_shim_config_names_missing_fields() -> None:
    with pytest.raises(errors.InvalidArgument, match="shim config: 'state_dir'"):
        ShimConfig({"container_id": "c", "bundle": "/b", "log_path": "/l"})
    cfg = ShimConfig({"container_id": "c", "bundle": "/b", "state_dir": "/s", "log_path": "/l"})
    assert (cfg.runtime, cfg.log_max_size, cfg.log_max_files, cfg.tty) == (
        "sampan",
        10 << 20,
        3,
        False,
    )
    assert cfg.socket_path == "/s/shim.sock"


def test_last_error_reads_json_and_text_logs(tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    log.write_text(
        '{"level":"info","msg":"starting"}\n{"level":"error","msg":"exec: \\"nope\\": not found"}\n'
    )
    assert last_error(str(log)) == 'exec: "nope": not found'
    log.write_text("plain failure\n")
    assert last_error(str(log)) == "plain failure"
    assert last_error(str(tmp_path / "missing")) == "no runtime log"


@pytest.fixture
def fake_shim(
    tmp_path: Path,
) -> Iterator[tuple[str, list[dict[str, Any]], Callable[[dict[str, Any]], None]]]:
    """A socket answering each request with the next queued reply (a long path on purpose)."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "shim.sock")
    assert len(path) > proto.MAX_SUN_PATH
    server = socket.socket(socket.AF_UNIX)
    proto.bind_unix(server, path)
    server.listen(8)
    seen: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                seen.append(json.loads(proto.read_line(conn)))
                conn.sendall(proto.encode(replies.pop(0)))
                if seen[-1]["op"] == "attach":
                    conn.sendall(proto.frame(1, b"out"))
                    conn.shutdown(socket.SHUT_WR)
                    conn.recv(100)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield path, seen, replies.append
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    t.join(timeout=2)


def test_client_requests_and_errors(fake_shim: Any) -> None:
    path, seen, queue = fake_shim
    client = proto.ShimClient(path)
    queue({"ok": True, "status": "running", "pid": 7})
    assert client.status()["pid"] == 7
    queue({"ok": True})
    client.signal(15, all=True)
    queue({"ok": False, "error": "no terminal", "kind": "Conflict"})
    with pytest.raises(errors.Conflict, match="no terminal"):
        client.resize(10, 20)
    queue({"ok": True, "tty": False})
    sock = client.attach(stdin=True, close_stdin=True)
    with sock:
        buf = bytearray(sock.recv(100))
        assert proto.read_frames(buf) == [(1, b"out")]
    assert [r["op"] for r in seen] == ["status", "signal", "resize", "attach"]
    assert seen[1] == {"op": "signal", "signal": 15, "all": True}
    assert seen[3]["stdin"] is True and seen[3]["close_stdin"] is True


def test_client_on_missing_shim(tmp_path: Path) -> None:
    with pytest.raises(errors.Unavailable, match="is not running"):
        proto.ShimClient(str(tmp_path / "none.sock")).status()


def test_read_state(tmp_path: Path) -> None:
    assert proto.read_state(str(tmp_path)) is None
    (tmp_path / "state.json").write_text('{"status": "stopped", "exit_code": 137}')
    assert proto.read_state(str(tmp_path)) == {"status": "stopped", "exit_code": 137}
    (tmp_path / "state.json").write_text("{half")
    with pytest.raises(errors.Internal, match="read shim state"):
        proto.read_state(str(tmp_path))
