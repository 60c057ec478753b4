"""Attach over the hijacked connection against a real sampand: 101 UPGRADED with Docker's
headers, 8-byte frames without a TTY and raw bytes with one, stdin EOF as a half-close while
output keeps flowing, attach before start, logs=1 replay, detach keys, resize."""

from __future__ import annotations

import os
import time

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401
from tests.integration.hijack_client import demux_all, hijack

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def test_attach_before_start_half_close_keeps_output(api: Api) -> None:  # noqa: F811
    # stdin EOF (half-close) closes the container's stdin; what it prints after must still arrive
    cid = api.create(["sh", "-c", "cat; sleep 0.3; echo after-eof; echo err >&2"],
                     OpenStdin=True, StdinOnce=True, AttachStdin=True)
    h = hijack(str(api.d.socket), "POST", f"/v1.51/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
    try:
        assert h.status == 101
        assert h.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
        assert h.headers["upgrade"] == "tcp"
        assert h.headers["connection"].lower() == "upgrade"
        api.call("POST", f"/containers/{cid}/start", status=204)
        h.send(b"hello\n")
        h.half_close()
        streams = demux_all(h.read_all())
    finally:
        h.close()
    assert streams[1] == b"hello\nafter-eof\n"
    assert streams[2] == b"err\n"
    assert api.wait(cid)["StatusCode"] == 0


def test_attach_old_api_says_raw_stream(api: Api) -> None:  # noqa: F811
    cid = api.create(["echo", "x"])
    h = hijack(str(api.d.socket), "POST", f"/v1.41/containers/{cid}/attach?stream=1&stdout=1")
    try:
        assert h.status == 101
        assert h.headers["content-type"] == "application/vnd.docker.raw-stream"
        api.call("POST", f"/containers/{cid}/start", status=204)
        assert demux_all(h.read_all()) == {1: b"x\n"}  # still framed: the container has no TTY
    finally:
        h.close()


def test_attach_tty_is_raw_and_logs_replay(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "echo first; sleep 30"], Tty=True)
    api.until(lambda: b"first" in api.d.request("GET", f"/containers/{cid}/logs?stdout=1").body)
    h = hijack(str(api.d.socket), "POST", f"/containers/{cid}/attach?stream=1&logs=1&stdout=1&stderr=1")
    try:
        assert h.headers["content-type"] == "application/vnd.docker.raw-stream"
        seen = h.read_until(b"first")
        assert not seen.startswith(b"\x01\x00\x00\x00")  # raw, no frame header
        api.call("POST", f"/containers/{cid}/resize?h=40&w=100", status=200)
        api.call("POST", f"/containers/{cid}/kill", status=204)
        h.read_all()
    finally:
        h.close()


def test_detach_keys_end_the_session_not_the_container(api: Api) -> None:  # noqa: F811
    cid = api.run(["cat"], OpenStdin=True, Tty=True)
    h = hijack(str(api.d.socket), "POST",
               f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x,y")
    try:
        h.send(b"abc\n")
        h.read_until(b"abc")
        h.send(b"\x18y")
        h.read_all(timeout=10)
    finally:
        h.close()
    time.sleep(0.2)
    assert api.inspect(cid)["State"]["Running"] is True


def test_attach_unknown_container_is_404_before_upgrade(api: Api) -> None:  # noqa: F811
    h = hijack(str(api.d.socket), "POST", "/containers/nope/attach?stream=1&stdout=1")
    try:
        assert h.status == 404
    finally:
        h.close()


def test_attach_without_upgrade_streams_a_200(api: Api) -> None:  # noqa: F811
    cid = api.create(["echo", "plain"])
    conn = api.d.connection()
    try:
        conn.request("POST", f"/containers/{cid}/attach?stream=1&stdout=1")
        api.call("POST", f"/containers/{cid}/start", status=204)
        resp = conn.getresponse()
        assert resp.status == 200
        assert demux_all(resp.read()) == {1: b"plain\n"}
    finally:
        conn.close()


def test_attach_over_websocket(api: Api) -> None:  # noqa: F811
    import asyncio

    import aiohttp

    cid = api.run(["sh", "-c", "echo before; read x; echo got-$x; sleep 30"], OpenStdin=True)
    api.until(lambda: b"before" in api.d.request("GET", f"/containers/{cid}/logs?stdout=1").body)

    async def session() -> bytes:
        conn = aiohttp.UnixConnector(path=str(api.d.socket))
        async with aiohttp.ClientSession(connector=conn) as s, s.ws_connect(
            f"http://docker/v1.51/containers/{cid}/attach/ws?logs=1&stream=1&stdin=1&stdout=1"
        ) as ws:
            got = b""
            await ws.send_bytes(b"ws\n")
            while b"got-ws" not in got:
                msg = await asyncio.wait_for(ws.receive(), 10)
                assert msg.type == aiohttp.WSMsgType.BINARY
                got += msg.data
            return got

    out = asyncio.run(session())
    assert out.startswith(b"before\n") and b"got-ws\n" in out and b"\x01\x00\x00\x00" not in out


def test_waiting_attach_ends_when_the_container_is_removed(api: Api) -> None:  # noqa: F811
    cid = api.create(["true"])
    h = hijack(str(api.d.socket), "POST", f"/containers/{cid}/attach?stream=1&stdout=1")
    try:
        assert h.status == 101
        api.call("DELETE", f"/containers/{cid}", status=204)
        body = h.read_all(timeout=10)
        assert b"No such container" in body and body[0] == 3  # a systemerr frame
    finally:
        h.close()
