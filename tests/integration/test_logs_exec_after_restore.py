"""The I/O side after live restore: a SIGKILLed sampand's successor shows the logs of the
containers it re-adopted (nothing lost or duplicated), follows them, execs into them,
attaches to them and samples their stats."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.daemon_fixture import Daemon
from tests.integration.container_daemon import Api, busybox_daemon  # noqa: F401
from tests.integration.hijack_client import demux_all, hijack

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def test_logs_exec_attach_after_sigkill(busybox_daemon: Daemon) -> None:  # noqa: F811
    api = Api(busybox_daemon)
    ids = [api.run(["sh", "-c", f"echo start-{i}; read x; echo got-$x; sleep 60"], OpenStdin=True)
           for i in range(3)]
    for i, cid in enumerate(ids):
        assert api.until(lambda cid=cid, i=i: f"start-{i}" in api.output(cid))
    busybox_daemon.stop(signal.SIGKILL)
    time.sleep(0.3)
    busybox_daemon.start()
    for i, cid in enumerate(ids):
        body = busybox_daemon.request("GET", f"/containers/{cid}/logs?stdout=1").body
        assert demux_all(body) == {1: f"start-{i}\n".encode()}  # once, not lost, not twice
        eid = api.call("POST", f"/containers/{cid}/exec", {"Cmd": ["sh", "-c", "exit 9"]}, status=201)["Id"]
        h = hijack(str(busybox_daemon.socket), "POST", f"/exec/{eid}/start", {})
        h.read_all()
        h.close()
        assert api.call("GET", f"/exec/{eid}/json")["ExitCode"] == 9
    # attach to a re-adopted container, type a line, see it through a follow of the logs
    h = hijack(str(busybox_daemon.socket), "POST", f"/containers/{ids[0]}/attach?stream=1&stdin=1&stdout=1")
    try:
        h.send(b"hello\n")
        assert b"got-hello" in h.read_until(b"got-hello")
    finally:
        h.close()
    s = api.call("GET", f"/containers/{ids[1]}/stats?stream=0&one-shot=1", status=200)
    assert s["memory_stats"]["usage"] > 0 and s["pids_stats"]["current"] >= 1
    for cid in ids:
        api.call("POST", f"/containers/{cid}/stop?t=1", status=204)
    body = busybox_daemon.request("GET", f"/containers/{ids[0]}/logs?stdout=1").body
    assert demux_all(body) == {1: b"start-0\ngot-hello\n"}
