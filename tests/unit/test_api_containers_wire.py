"""Docker's container JSON <-> engine dataclasses (api/convert.py, api/types_containers.py)."""

from __future__ import annotations

import time

import pytest

from sampan import errors
from sampan.api import convert
from sampan.api import types_containers as tc
from sampan.engine.model import Container, ContainerSpec, HostSpec, MountPoint, RestartPolicy


def test_create_body_to_specs() -> None:
    body = {
        "Image": "busybox", "Cmd": "echo", "Entrypoint": ["/bin/sh", "-c"], "Env": ["A=1"], "Tty": True,
        "Labels": {"k": "v"}, "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "StopTimeout": 3,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Retries": 2},
        "HostConfig": {
            "Binds": ["/a:/b:ro"], "Memory": 100 << 20, "CpuShares": 10, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o1777}},
                       {"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"NoCopy": True, "Labels": {"x": "y"}}}],
            "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}], "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
            "Runtime": "", "NetworkMode": "host", "PidsLimit": -1, "ConsoleSize": [24, 80],
        },
    }
    spec = convert.container_spec(body)
    host = convert.host_spec(body["HostConfig"])
    assert spec.cmd == ["echo"] and spec.entrypoint == ["/bin/sh", "-c"] and spec.tty
    assert spec.exposed_ports == ["80/tcp"] and spec.volumes == ["/data"] and spec.stop_timeout == 3
    assert spec.healthcheck is not None and spec.healthcheck.retries == 2
    assert host.binds == ["/a:/b:ro"] and host.memory == 100 << 20 and host.cpu_shares == 10
    assert host.restart_policy == RestartPolicy("on-failure", 3)
    assert host.mounts[0].options == ["size=1024", "mode=1777"]
    assert host.mounts[1].no_copy and host.mounts[1].labels == {"x": "y"}
    assert host.ulimits[0].hard == 20 and host.log_config.config == {"max-size": "1m"}
    assert host.runtime == "sampan" and host.network_mode == "host" and host.pids_limit == 0
    assert host.console_size == [24, 80]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "config cannot be empty"),
        ({"Image": "b", "HostConfig": {"Memory": "1g"}}, "Memory"),
        ({"Image": "b", "HostConfig": {"LogConfig": {"Type": "syslog"}}}, "no log driver named 'syslog'"),
        ({"Image": "b", "HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/t", "Source": "x"}]}}, "Source must not"),
        ({"Image": "b", "Env": "A=1,B"}, None),
        ({"Image": "b", "Cmd": [1, 2]}, "Cmd"),
    ],
)
def test_bad_bodies(body: dict[str, object], message: str | None) -> None:
    if message is None:  # a single string is accepted where Docker takes a StrSlice
        assert convert.container_spec(body).env == ["A=1,B"]
        return
    with pytest.raises(errors.InvalidArgument, match=message):
        convert.container_spec(body)
        convert.host_spec(body.get("HostConfig"))


def test_update_changes() -> None:
    changes = convert.update_changes({"Memory": 1 << 26, "CpusetCpus": "0", "RestartPolicy": {"Name": "always"}, "CpuShares": 0})
    assert changes == {"memory": 1 << 26, "cpuset_cpus": "0", "restart_policy": RestartPolicy("always", 0)}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"), (150, "2 minutes"),
     (3600, "About an hour"), (7200, "2 hours"), (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
     (800 * 86400, "2 years")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert tc.human_duration(seconds) == text


def _container(status: str, **state: object) -> Container:
    c = Container(id="1" * 64, name="web", created="2026-01-01T00:00:00Z", spec=ContainerSpec(image="busybox", cmd=["sh", "-c", "echo a b"]),
                  host=HostSpec(), image_id="sha256:" + "2" * 64, image_name="busybox", path="sh", args=["-c", "echo a b"])
    c.state.status = status
    for k, v in state.items():
        setattr(c.state, k, v)
    return c


def test_status_text_and_summary() -> None:
    now = time.time()
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 125)) + ".5Z"
    assert tc.status_text(_container("running", started_at=started), now) == "Up 2 minutes"
    assert tc.status_text(_container("paused", started_at=started), now) == "Up 2 minutes (Paused)"
    assert tc.status_text(_container("created"), now) == "Created"
    exited = _container("exited", exit_code=3, finished_at=started)
    exited.has_been_started = True
    assert tc.status_text(exited, now) == "Exited (3) 2 minutes ago"
    c = _container("running", started_at=started)
    c.mount_points = [MountPoint(type="volume", destination="/d", source="/v/_data", name="v", driver="local")]
    s = tc.container_summary(c, "1.51")
    assert s["Names"] == ["/web"] and s["Command"] == "sh -c 'echo a b'" and s["State"] == "running"
    c.args = ["-c", "", "it's"]
    assert tc.command_text(c) == "sh -c  it's"  # only arguments with a space are quoted, nothing escaped
    c.args = ["-c", "echo a b"]
    assert s["Created"] == 1767225600 and s["Mounts"][0]["Name"] == "v" and s["HostConfig"] == {"NetworkMode": "none"}
    full = tc.container_inspect(c, "1.51")
    assert full["Name"] == "/web" and full["Config"]["Cmd"] == ["sh", "-c", "echo a b"] and "SizeRw" not in full
    assert full["State"]["Status"] == "running" and full["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
