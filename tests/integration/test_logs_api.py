"""Logs through the Engine API against a real sampand: frames per stream, tail, since/until,
timestamps, follow until exit, TTY raw, rotation with --log-opt max-size/max-file."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401
from tests.integration.hijack_client import demux_all

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def _logs(api: Api, cid: str, query: str) -> tuple[int, dict[str, str], bytes]:  # noqa: F811
    r = api.d.request("GET", f"/containers/{cid}/logs?{query}")
    return r.status, r.headers, r.body


def test_logs_streams_tail_timestamps(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "for i in 1 2 3 4; do echo out$i; done; echo err >&2"])
    api.wait(cid)
    status, headers, body = _logs(api, cid, "stdout=1&stderr=1")
    assert status == 200
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert demux_all(body) == {1: b"out1\nout2\nout3\nout4\n", 2: b"err\n"}
    assert demux_all(_logs(api, cid, "stdout=1&tail=2")[2]) == {1: b"out3\nout4\n"}
    assert _logs(api, cid, "stdout=1&tail=0")[2] == b""
    stamped = demux_all(_logs(api, cid, "stderr=1&timestamps=1")[2])[2].decode()
    stamp, _, text = stamped.partition(" ")
    assert text == "err\n" and stamp.endswith("Z") and len(stamp.split(".")[1]) == 10
    assert _logs(api, cid, "")[0] == 400


def test_logs_since_until(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "echo early; sleep 1.2; echo late"])
    api.wait(cid)
    lines = demux_all(_logs(api, cid, "stdout=1&timestamps=1")[2])[1].decode().splitlines()
    from sampan.engine.logs import parse_time_ns

    t_late = parse_time_ns(lines[1].split()[0])
    mid = f"{(t_late - 500_000_000) / 1e9:.9f}"
    assert demux_all(_logs(api, cid, f"stdout=1&since={mid}")[2]) == {1: b"late\n"}
    assert demux_all(_logs(api, cid, f"stdout=1&until={mid}")[2]) == {1: b"early\n"}


def test_logs_follow_until_exit(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "echo a; sleep 1; echo b"])
    t0 = time.monotonic()
    body = _logs(api, cid, "stdout=1&follow=1")[2]
    assert demux_all(body) == {1: b"a\nb\n"}
    assert time.monotonic() - t0 >= 0.5  # it waited for b


def test_logs_follow_sees_new_lines_promptly(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "read x; echo got $x; sleep 30"], OpenStdin=True)
    conn = api.d.connection()
    got: list[bytes] = []
    try:
        conn.request("GET", f"/containers/{cid}/logs?stdout=1&follow=1")
        resp = conn.getresponse()

        def reader() -> None:
            got.append(resp.read1(4096) if hasattr(resp, "read1") else resp.read(20))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        time.sleep(0.3)
        from tests.integration.hijack_client import hijack

        h = hijack(str(api.d.socket), "POST", f"/containers/{cid}/attach?stream=1&stdin=1")
        h.send(b"ping\n")
        t.join(5)
        h.close()
    finally:
        conn.close()
    assert got and b"got ping" in got[0]


def test_logs_tty_raw(api: Api) -> None:  # noqa: F811
    cid = api.run(["echo", "tty"], Tty=True)
    api.wait(cid)
    _status, headers, body = _logs(api, cid, "stdout=1")
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    assert body == b"tty\r\n"


def test_logs_rotated_files_read_in_order(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done"],
                  host={"LogConfig": {"Type": "json-file", "Config": {"max-size": "4k", "max-file": "3"}}})
    api.wait(cid)
    log_path = api.inspect(cid)["LogPath"]
    assert os.path.exists(log_path + ".1") and os.path.exists(log_path + ".2")
    out = demux_all(_logs(api, cid, "stdout=1")[2])[1].decode().splitlines()
    assert out[-1] == "line-399"
    numbers = [int(x.split("-")[1]) for x in out]
    assert numbers == sorted(numbers) and len(numbers) < 400  # the oldest were rotated away
    assert demux_all(_logs(api, cid, "stdout=1&tail=3")[2])[1] == b"line-397\nline-398\nline-399\n"


def test_logs_follow_ends_when_the_client_leaves(api: Api) -> None:  # noqa: F811
    import socket as socketmod

    cid = api.run(["sleep", "60"])
    s = socketmod.socket(socketmod.AF_UNIX)
    s.connect(str(api.d.socket))
    s.sendall(f"GET /containers/{cid}/logs?stdout=1&follow=1 HTTP/1.1\r\nHost: d\r\n\r\n".encode())
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.close()
    # the daemon notices within its polling interval; the request is logged when it ends
    assert api.until(lambda: f"/containers/{cid}/logs?stdout=1&follow=1 -> 200" in api.d.log_text(), timeout=5)
