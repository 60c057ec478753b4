"""Spec generation: mounts (defaults, binds, volumes, tmpfs, /etc files, read-only), resources,
--init; and the create-time parsing of -v/--tmpfs and the restart policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampan import errors
from sampan.engine import creation, restart
from sampan.engine.model import Container, ContainerSpec, HostSpec, RestartPolicy
from sampan.engine.specgen import ResolvedMount, SpecContext, generate
from sampan.engine.specgen.resources import resources_for


def container(host: HostSpec) -> Container:
    c = Container(id="e" * 64, name="x", created="", spec=ContainerSpec(image="i", cmd=["sh"]), host=host,
                  image_id="sha256:" + "f" * 64, path="sh")
    c.hostname_path, c.hosts_path, c.resolv_conf_path = "/b/hostname", "/b/hosts", "/b/resolv.conf"
    return c


def test_mounts_order_and_overrides(tmp_path: Path) -> None:
    mounts = [
        ResolvedMount("bind", "/a/b", "/host/b"),
        ResolvedMount("volume", "/a", "/vol/_data", read_only=True),
        ResolvedMount("tmpfs", "/dev/shm", options=["size=1m"]),
        ResolvedMount("bind", "/p", "/host/p", propagation="rshared"),
    ]
    spec = generate(SpecContext(container=container(HostSpec(shm_size=1 << 20)), rootfs=str(tmp_path), mounts=mounts))
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.count("/dev/shm") == 1
    assert dests.index("/a") < dests.index("/a/b")
    by = {m["destination"]: m for m in spec["mounts"]}
    assert by["/a"]["options"] == ["rbind", "ro"] and by["/a"]["source"] == "/vol/_data"
    assert by["/dev/shm"]["type"] == "tmpfs" and "size=1m" in by["/dev/shm"]["options"]
    assert by["/p"]["options"] == ["rbind", "rshared"]
    assert by["/etc/hosts"]["source"] == "/b/hosts" and by["/etc/resolv.conf"]["type"] == "bind"


def test_shm_size_and_readonly_root(tmp_path: Path) -> None:
    spec = generate(SpecContext(container=container(HostSpec(shm_size=128 << 20, readonly_rootfs=True)), rootfs=str(tmp_path)))
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert "size=131072k" in shm["options"]
    assert spec["root"]["readonly"] is True


def test_relative_mount_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="must be absolute"):
        generate(SpecContext(container=container(HostSpec()), rootfs=str(tmp_path), mounts=[ResolvedMount("bind", "rel", "/x")]))


def test_resources() -> None:
    res = resources_for(HostSpec(memory=100 << 20, memory_reservation=50 << 20, cpu_shares=10, nano_cpus=1_500_000_000,
                                 cpuset_cpus="0", pids_limit=50, blkio_weight=300))
    assert res["memory"] == {"limit": 100 << 20, "reservation": 50 << 20, "swap": 200 << 20}
    assert res["cpu"] == {"shares": 10, "period": 100_000, "quota": 150_000, "cpus": "0"}
    assert res["pids"] == {"limit": 50}
    assert res["blockIO"] == {"weight": 300}
    assert resources_for(HostSpec()) == {}
    assert resources_for(HostSpec(memory=10 << 20, memory_swap=-1))["memory"]["swap"] == -1


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (HostSpec(memory=1024), "Minimum memory limit"),
        (HostSpec(memory=100 << 20, memory_swap=50 << 20), "memoryswap limit should be larger"),
        (HostSpec(memory_swap=50 << 20), "always set the Memory limit"),
        (HostSpec(nano_cpus=1, cpu_period=1000), "Nano CPUs and CPU Period"),
        (HostSpec(blkio_weight=5), "blkio weight"),
    ],
)
def test_bad_resources(host: HostSpec, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        resources_for(host)


def test_device_cgroup_rules(tmp_path: Path) -> None:
    from sampan.engine.specgen.resources import parse_device_rule

    assert parse_device_rule("c 7:128 rwm") == {"allow": True, "type": "c", "major": 7, "minor": 128, "access": "rwm"}
    assert parse_device_rule("b *:* r") == {"allow": True, "type": "b", "access": "r"}
    with pytest.raises(errors.InvalidArgument, match="invalid device cgroup rule"):
        parse_device_rule("x 1:2 q")
    spec = generate(SpecContext(container=container(HostSpec(device_cgroup_rules=["c 7:* rw"])), rootfs=str(tmp_path)))
    assert spec["linux"]["resources"]["devices"][-1] == {"allow": True, "type": "c", "major": 7, "access": "rw"}
    assert spec["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}


def test_init(tmp_path: Path) -> None:
    init = tmp_path / "tini"
    init.write_text("")
    spec = generate(SpecContext(container=container(HostSpec(init=True)), rootfs=str(tmp_path), init_path=str(init)))
    assert spec["process"]["args"] == ["/sbin/docker-init", "--", "sh"]
    assert {"destination": "/sbin/docker-init", "type": "bind", "source": str(init), "options": ["bind", "ro"]} in spec["mounts"]
    with pytest.raises(errors.Unavailable, match="tini"):
        generate(SpecContext(container=container(HostSpec(init=True)), rootfs=str(tmp_path), init_path=str(tmp_path / "no")))


@pytest.mark.parametrize(
    ("bind", "kind", "source", "target", "ro"),
    [
        ("/data", "volume", "", "/data", False),
        ("vol:/data", "volume", "vol", "/data", False),
        ("/host:/data:ro", "bind", "/host", "/data", True),
        ("/host:/data:rw,z", "bind", "/host", "/data", False),
    ],
)
def test_parse_bind(bind: str, kind: str, source: str, target: str, ro: bool) -> None:
    m = creation.parse_bind(bind)
    assert (m.type, m.source, m.target, m.read_only) == (kind, source, target, ro)


@pytest.mark.parametrize("bind", ["/a:b", "/a:/b:bogus", "a:b:c:d", ":/x", "/h:/"])
def test_parse_bind_errors(bind: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        creation.parse_bind(bind)


def test_merge_image_config() -> None:
    image = {"Cmd": ["sh"], "Entrypoint": ["/init"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/w",
             "Labels": {"l": "1"}, "Volumes": {"/v": {}}, "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}}}
    s = creation.merge_image_config(ContainerSpec(image="i", env=["A=2"], labels={"m": "2"}), image)
    assert (s.entrypoint, s.cmd) == (["/init"], ["sh"])
    assert s.env == ["PATH=/bin", "A=2"] and s.working_dir == "/w" and s.labels == {"l": "1", "m": "2"}
    assert s.volumes == ["/v"] and s.stop_signal == "SIGQUIT" and s.exposed_ports == ["80/tcp"]
    s = creation.merge_image_config(ContainerSpec(image="i", entrypoint=["/bin/echo"]), image)
    assert (s.entrypoint, s.cmd) == (["/bin/echo"], [])  # an entrypoint drops the image's Cmd
    s = creation.merge_image_config(ContainerSpec(image="i", cmd=["ls"]), image)
    assert (s.entrypoint, s.cmd) == (["/init"], ["ls"])


def test_names() -> None:
    assert creation.check_name("/web") == "web"
    with pytest.raises(errors.InvalidArgument, match="Invalid container name"):
        creation.check_name("-bad")
    taken = {creation.generate_name(set()) for _ in range(20)}
    assert all("_" in n for n in taken)


@pytest.mark.parametrize(("text", "size"), [("10m", 10 << 20), ("1g", 1 << 30), ("512k", 512 << 10), ("100", 100), ("1.5k", 1536)])
def test_parse_size(text: str, size: int) -> None:
    assert creation.parse_size(text) == size


def test_restart_policy() -> None:
    assert restart.parse_policy("on-failure:3") == RestartPolicy("on-failure", 3)
    with pytest.raises(errors.InvalidArgument):
        restart.parse_policy("sometimes")
    with pytest.raises(errors.InvalidArgument):
        restart.validate(RestartPolicy("always", 2))
    on_failure = RestartPolicy("on-failure", 2)
    assert restart.should_restart(on_failure, exit_code=1, restart_count=1, manually_stopped=False)
    assert not restart.should_restart(on_failure, exit_code=1, restart_count=2, manually_stopped=False)
    assert not restart.should_restart(on_failure, exit_code=0, restart_count=0, manually_stopped=False)
    always = RestartPolicy("always")
    assert restart.should_restart(always, exit_code=0, restart_count=9, manually_stopped=False)
    assert not restart.should_restart(always, exit_code=0, restart_count=0, manually_stopped=True)
    assert restart.should_restart(always, exit_code=0, restart_count=0, manually_stopped=True, daemon_start=True)
    unless = RestartPolicy("unless-stopped")
    assert not restart.should_restart(unless, exit_code=0, restart_count=0, manually_stopped=True, daemon_start=True)
    assert not restart.should_restart(RestartPolicy("no"), exit_code=1, restart_count=0, manually_stopped=False)


def test_backoff_doubles_and_resets() -> None:
    b = restart.Backoff()
    assert [b.next(0.5) for _ in range(4)] == [0.1, 0.2, 0.4, 0.8]
    assert b.next(11.0) == 0.1
    for _ in range(20):
        b.next(0)
    assert b.delay == restart.MAX_DELAY


def test_swappiness_and_what_cgroup_v2_cannot_do() -> None:
    from sampan.engine.specgen.resources import discard_unsupported

    host = HostSpec(memory=64 << 20, memory_swappiness=10, oom_kill_disable=True)
    assert discard_unsupported(host, cgroup_v2=False) == []
    assert resources_for(host)["memory"] == {"limit": 64 << 20, "swap": 128 << 20, "swappiness": 10,
                                             "disableOOMKiller": True}
    warnings = discard_unsupported(host, cgroup_v2=True)
    assert len(warnings) == 2 and "Memory swappiness discarded" in warnings[0] and "OomKillDisable discarded" in warnings[1]
    assert resources_for(host)["memory"] == {"limit": 64 << 20, "swap": 128 << 20}


def test_swappiness_from_the_api() -> None:
    from sampan.api.convert import _swappiness

    assert _swappiness(-1) is None and _swappiness(0) == 0 and _swappiness(100) == 100
    with pytest.raises(errors.InvalidArgument, match="Invalid value: 101, valid memory swappiness range is 0-100"):
        _swappiness(101)
