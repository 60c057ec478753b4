"""Live restore: SIGKILL of sampand leaves containers running; the next daemon re-adopts them,
records the exits that happened meanwhile, applies restart policies, and stops them with the
right exit codes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.daemon_fixture import Daemon
from tests.integration.container_daemon import Api, busybox_daemon  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_daemon_then_readopt(busybox_daemon: Daemon) -> None:  # noqa: F811
    api = Api(busybox_daemon)
    running = [api.run(["sleep", "60"], name=f"r{i}", host={"Init": True}) for i in range(5)]
    quitter = api.run(["sh", "-c", "sleep 0.5; exit 7"], name="quitter")
    always = api.run(["sh", "-c", "sleep 0.5; exit 3"], name="always", host={"RestartPolicy": {"Name": "always"}})
    pids = {cid: api.inspect(cid)["State"]["Pid"] for cid in running}
    assert all(pids.values())
    busybox_daemon.stop(signal.SIGKILL)
    time.sleep(1.5)  # quitter and always exit while no daemon watches
    assert all(_alive(pid) for pid in pids.values())
    busybox_daemon.start()
    listed = {c["Id"]: c for c in api.call("GET", "/containers/json?all=1", status=200)}
    assert set(listed) == {*running, quitter, always}
    for cid in running:
        info = api.inspect(cid)
        assert info["State"]["Status"] == "running" and info["State"]["Pid"] == pids[cid]
    q = api.inspect(quitter)["State"]
    assert (q["Status"], q["ExitCode"]) == ("exited", 7)
    # the restart policy applies to the exit the daemon missed
    assert api.until(lambda: api.inspect(always)["RestartCount"] >= 1, timeout=10)
    for cid in running:
        api.call("POST", f"/containers/{cid}/stop?t=5", status=204)
        assert api.inspect(cid)["State"]["ExitCode"] == 143
        assert not _alive(pids[cid])
    api.call("POST", f"/containers/{always}/stop?t=1", status=204)


def test_sigterm_daemon_then_wait_survives(busybox_daemon: Daemon) -> None:  # noqa: F811
    api = Api(busybox_daemon)
    cid = api.run(["sleep", "60"], host={"Init": True})
    busybox_daemon.stop(signal.SIGTERM)
    busybox_daemon.start()
    assert api.inspect(cid)["State"]["Running"] is True, (api.output(cid), busybox_daemon.log_text())
    api.call("POST", f"/containers/{cid}/kill?signal=TERM", status=204)
    assert api.wait(cid)["StatusCode"] == 143
