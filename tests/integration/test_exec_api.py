"""Exec through the Engine API against a real sampand: create/start/inspect, exit codes
(0, n, 126/127 when the runtime cannot start it), stdin with half-close, TTY with resize,
detached exec, env/workdir/user, exec into a stopped container."""

from __future__ import annotations

import os
import time

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401
from tests.integration.hijack_client import demux_all, hijack

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def _exec(api: Api, cid: str, cmd: list[str], **config: object) -> str:  # noqa: F811
    body = {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True, **config}
    return str(api.call("POST", f"/containers/{cid}/exec", body, status=201)["Id"])


def _run_exec(api: Api, eid: str, stdin: bytes | None = None, tty: bool = False) -> bytes:  # noqa: F811
    h = hijack(str(api.d.socket), "POST", f"/exec/{eid}/start", {"Detach": False, "Tty": tty})
    try:
        assert h.status == 101
        if stdin is not None:
            h.send(stdin)
            h.half_close()
        return h.read_all()
    finally:
        h.close()


def test_exec_output_exit_code_and_inspect(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"])
    eid = _exec(api, cid, ["sh", "-c", "echo out; echo err >&2; exit 7"], Env=["X=1"])
    info = api.call("GET", f"/exec/{eid}/json", status=200)
    assert info["Running"] is False and info["ExitCode"] is None and info["ContainerID"] == cid
    streams = demux_all(_run_exec(api, eid))
    assert streams == {1: b"out\n", 2: b"err\n"}
    info = api.call("GET", f"/exec/{eid}/json", status=200)
    assert info["ExitCode"] == 7 and info["Running"] is False and info["Pid"] > 0
    assert info["ProcessConfig"]["entrypoint"] == "sh"
    # started twice: Docker's 409
    assert api.status("POST", f"/exec/{eid}/start", {"Detach": True})[0] == 409


def test_exec_env_workdir_user(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"], Env=["FROM_CONTAINER=yes"])
    eid = _exec(api, cid, ["sh", "-c", "echo $FROM_CONTAINER $X; pwd; id -u"], Env=["X=2"],
                WorkingDir="/tmp", User="nobody")
    out = demux_all(_run_exec(api, eid))[1].decode().split()
    assert out[:3] == ["yes", "2", "/tmp"]
    assert out[3] != "0"


def test_exec_stdin_half_close(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"])
    eid = _exec(api, cid, ["sh", "-c", "cat; echo done"], AttachStdin=True)
    assert demux_all(_run_exec(api, eid, stdin=b"abc\n")) == {1: b"abc\ndone\n"}
    assert api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 0


def test_exec_not_found_and_not_executable(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"])
    eid = _exec(api, cid, ["no-such-program"])
    streams = demux_all(_run_exec(api, eid))
    assert b"no-such-program" in streams.get(2, b"")
    assert api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 127
    eid = _exec(api, cid, ["/etc/passwd"])
    _run_exec(api, eid)
    assert api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 126


def test_exec_tty_raw_and_resize(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"])
    eid = _exec(api, cid, ["sh", "-c", "sleep 0.5; stty size"], Tty=True, ConsoleSize=[33, 99])
    h = hijack(str(api.d.socket), "POST", f"/exec/{eid}/start", {"Tty": True})
    try:
        assert h.headers["content-type"] == "application/vnd.docker.raw-stream"
        api.call("POST", f"/exec/{eid}/resize?h=40&w=120", status=200)
        out = h.read_all()
    finally:
        h.close()
    assert b"40 120" in out
    assert api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 0


def test_exec_detached_runs_and_records_exit(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"])
    eid = _exec(api, cid, ["sh", "-c", "echo hi > /tmp/marker; exit 3"])
    api.call("POST", f"/exec/{eid}/start", {"Detach": True}, status=200)
    assert api.until(lambda: api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 3)
    eid2 = _exec(api, cid, ["cat", "/tmp/marker"])
    assert demux_all(_run_exec(api, eid2)) == {1: b"hi\n"}


def test_exec_in_stopped_container_is_409_and_unknown_is_404(api: Api) -> None:  # noqa: F811
    cid = api.create(["true"])
    status, body = api.status("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert status == 409 and "is not running" in body["message"]
    assert api.status("GET", "/exec/deadbeef/json")[0] == 404
    assert api.status("POST", "/containers/nope/exec", {"Cmd": ["true"]})[0] == 404


def test_exec_events(api: Api) -> None:  # noqa: F811
    since = time.time()
    cid = api.run(["sleep", "60"])
    eid = _exec(api, cid, ["true"])
    _run_exec(api, eid)
    until = time.time() + 1
    r = api.d.request("GET", f"/events?since={since}&until={until}")
    actions = [line for line in r.body.decode().splitlines() if cid in line]
    assert any('"exec_create: true"' in a for a in actions)
    assert any('"exec_start: true"' in a for a in actions)
    assert any('"exec_die"' in a for a in actions)


@pytest.mark.skipif(not __import__("shutil").which("runc"), reason="runc is not installed")
def test_exec_with_runc_tty_and_exit_code(api: Api) -> None:  # noqa: F811
    # runc takes a console socket only with --detach: the exec reaper waits for the process
    cid = api.run(["sleep", "60"], host={"Runtime": "runc"})
    eid = _exec(api, cid, ["sh", "-c", "tty; exit 5"], Tty=True)
    out = _run_exec(api, eid, tty=True)
    assert b"/dev/pts/" in out
    assert api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 5
    eid = _exec(api, cid, ["sh", "-c", "echo plain; exit 2"])
    assert demux_all(_run_exec(api, eid)) == {1: b"plain\n"}
    assert api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 2
