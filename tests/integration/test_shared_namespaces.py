"""``--network/--pid/--ipc container:<name>``: a container joins a running one's namespaces."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.container_daemon import Api, api  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


@pytest.fixture(autouse=True)
def _clean(api: Api) -> Iterator[None]:  # noqa: F811
    yield
    api.remove_all()


def _ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_sidecar_joins_network_pid_and_ipc(api: Api) -> None:  # noqa: F811
    web = api.run(["sleep", "60"], name="web", Hostname="webhost", host={"Init": True})
    web_pid = api.inspect(web)["State"]["Pid"]
    script = "for n in net pid ipc uts; do readlink /proc/self/ns/$n; done; hostname; ps -o comm"
    side = api.run(["sh", "-c", script], host={"NetworkMode": "container:web", "PidMode": "container:web",
                                              "IpcMode": f"container:{web[:12]}"})
    assert api.wait(side)["StatusCode"] == 0
    lines = api.output(side).splitlines()
    assert lines[:3] == [_ns(web_pid, "net"), _ns(web_pid, "pid"), _ns(web_pid, "ipc")]
    assert lines[3] != _ns(web_pid, "uts")  # only what was asked is shared
    assert lines[4] == "webhost"  # the network's owner's hostname, as Docker
    assert "sleep" in lines[5:]  # web's processes are visible in the shared PID namespace
    info = api.inspect(side)
    assert info["HostConfig"]["NetworkMode"] == "container:web" and info["HostConfig"]["PidMode"] == "container:web"
    assert info["HostsPath"] == api.inspect(web)["HostsPath"]
    # the sidecar owns none of them: removing it leaves web running in its namespaces
    api.call("DELETE", f"/containers/{side}", status=204)
    assert api.inspect(web)["State"]["Running"] and _ns(web_pid, "net")


def test_private_by_default(api: Api) -> None:  # noqa: F811
    web = api.run(["sleep", "60"], host={"Init": True})
    other = api.run(["sleep", "60"], host={"Init": True})
    a, b = (api.inspect(c)["State"]["Pid"] for c in (web, other))
    assert all(_ns(a, k) != _ns(b, k) for k in ("net", "pid", "ipc"))


@pytest.mark.parametrize(("host", "config", "message"), [
    ({"PidMode": "bogus"}, {}, "invalid PID mode: bogus"),
    ({"IpcMode": "shared"}, {}, "invalid IPC mode: shared"),
    ({"NetworkMode": "container:"}, {}, "invalid container format container:<name|id>"),
    ({"NetworkMode": "container:nosuch"}, {}, "No such container: nosuch"),
    ({"PidMode": "container:nosuch"}, {}, "No such container: nosuch"),
    ({"NetworkMode": "container:web", "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}, {},
     "conflicting options: port publishing and the container type network mode"),
    ({"NetworkMode": "container:web", "Dns": ["1.1.1.1"]}, {}, "conflicting options: dns and the network mode"),
    ({"NetworkMode": "container:web"}, {"Hostname": "x"}, "conflicting options: hostname and the network mode"),
])
def test_bad_modes_are_refused_at_create(api: Api, host: dict[str, object], config: dict[str, object],  # noqa: F811
                                         message: str) -> None:
    api.create(["true"], name="web")
    before = api.call("GET", "/containers/json?all=1", status=200)
    code, body = api.status("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], "HostConfig": host, **config})
    assert code == 400 and message in body["message"], body
    assert api.call("GET", "/containers/json?all=1", status=200) == before  # nothing half-made


def test_joining_a_stopped_container_fails_at_start(api: Api) -> None:  # noqa: F811
    api.create(["sleep", "60"], name="web")
    side = api.create(["true"], host={"NetworkMode": "container:web"})
    code, body = api.status("POST", f"/containers/{side}/start")
    assert code == 409 and "cannot join network of a non running container" in body["message"], body
    assert api.inspect(side)["State"]["Status"] == "created"
