"""Health checks run by the daemon (through exec) against a real sampand: starting ->
healthy, failing streak -> unhealthy, the start period, timeouts, health_status events and
the ps status text."""

from __future__ import annotations

import os
import time

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

MS = 1_000_000


def _health(api: Api, cid: str) -> dict[str, object]:  # noqa: F811
    return dict(api.inspect(cid)["State"].get("Health") or {})


def test_healthy_then_unhealthy(api: Api) -> None:  # noqa: F811
    since = time.time()
    cid = api.run(["sh", "-c", "touch /ok; sleep 60"], Healthcheck={
        "Test": ["CMD-SHELL", "test -e /ok && echo fine"], "Interval": 200 * MS, "Timeout": 2000 * MS,
        "Retries": 2,
    })
    assert _health(api, cid)["Status"] == "starting"
    assert api.until(lambda: _health(api, cid).get("Status") == "healthy", timeout=10)
    h = _health(api, cid)
    log = h["Log"]
    assert isinstance(log, list) and log[-1]["ExitCode"] == 0 and log[-1]["Output"] == "fine\n"
    ps = api.call("GET", "/containers/json")
    assert any(c["Id"] == cid and c["Status"].endswith("(healthy)") for c in ps)
    eid = api.call("POST", f"/containers/{cid}/exec", {"Cmd": ["rm", "/ok"]}, status=201)["Id"]
    api.call("POST", f"/exec/{eid}/start", {"Detach": True}, status=200)
    assert api.until(lambda: _health(api, cid).get("Status") == "unhealthy", timeout=10)
    h = _health(api, cid)
    assert int(str(h["FailingStreak"])) >= 2 and len(h["Log"]) <= 5  # type: ignore[arg-type]
    r = api.d.request("GET", f"/events?since={since}&until={time.time() + 1}&filters="
                      '%7B%22container%22%3A%5B%22' + cid + '%22%5D%7D')
    text = r.body.decode()
    assert "health_status: healthy" in text and "health_status: unhealthy" in text


def test_start_period_and_timeout(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"], Healthcheck={
        "Test": ["CMD", "sleep", "5"], "Interval": 200 * MS, "Timeout": 300 * MS,
        "Retries": 1, "StartPeriod": 1500 * MS,
    })
    time.sleep(1.0)
    h = _health(api, cid)
    assert h["Status"] == "starting"  # failures inside the start period do not count
    assert api.until(lambda: _health(api, cid).get("Status") == "unhealthy", timeout=10)
    last = _health(api, cid)["Log"][-1]  # type: ignore[index]
    assert last["ExitCode"] == -1 and "exceeded timeout" in last["Output"]


def test_no_healthcheck_no_health(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"], Healthcheck={"Test": ["NONE"]})
    time.sleep(0.3)
    assert _health(api, cid) == {}
