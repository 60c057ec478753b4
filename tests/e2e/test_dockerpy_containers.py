"""sampan's port of docker-py's integration tests api_container_test.py (lifecycle parts) and
api_volume_test.py, run with docker-py against a real sampand.

Written for sampan from reading docker-py's tests (tests/integration/ in docker/docker-py);
tests not ported are listed with their reason in docs/docker-py-tests.md.  Output is read from
the container's json-file log (the logs endpoint belongs to the I/O port).
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

docker = pytest.importorskip("docker")
requests = pytest.importorskip("requests")

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

BUSYBOX = "busybox"


def run(client: Any, *args: Any, **kwargs: Any) -> str:
    cid = client.create_container(*args, **kwargs)["Id"]
    client.start(cid)
    assert client.wait(cid)["StatusCode"] == 0
    return str(cid)


# ------------------------------------------------------------------ ListContainersTest


def test_list_containers(client: Any) -> None:
    size = len(client.containers(all=True))
    res = client.create_container(BUSYBOX, "true")
    client.start(res["Id"])
    res2 = client.containers(all=True)
    assert len(res2) == size + 1
    [retrieved] = [x for x in res2 if x["Id"].startswith(res["Id"])]
    assert retrieved["Command"] == "true"
    assert re.search(r"busybox:.*", retrieved["Image"]) or retrieved["Image"] == "busybox"
    assert "Status" in retrieved


# ------------------------------------------------------------------ CreateContainerTest


def test_create_with_host_pid_mode(client: Any) -> None:
    ctnr = client.create_container(BUSYBOX, "true", host_config=client.create_host_config(pid_mode="host", network_mode="none"))
    client.start(ctnr)
    assert client.inspect_container(ctnr)["HostConfig"]["PidMode"] == "host"


def test_create_with_restart_policy(client: Any) -> None:
    container = client.create_container(BUSYBOX, ["sleep", "2"], host_config=client.create_host_config(
        restart_policy={"Name": "always", "MaximumRetryCount": 0}, network_mode="none"))
    cid = container["Id"]
    client.start(cid)
    client.wait(cid)
    with pytest.raises(docker.errors.APIError) as exc:
        client.remove_container(cid)
    assert "stop the container before" in exc.value.explanation.lower()
    client.remove_container(cid, force=True)


def test_create_container_readonly_fs(client: Any) -> None:
    ctnr = client.create_container(BUSYBOX, ["mkdir", "/shrine"], host_config=client.create_host_config(read_only=True, network_mode="none"))
    client.start(ctnr)
    assert client.wait(ctnr)["StatusCode"] != 0


def test_create_container_with_name(client: Any) -> None:
    res = client.create_container(BUSYBOX, "true", name="foobar")
    assert client.inspect_container(res["Id"])["Name"] == "/foobar"


def test_create_container_privileged(client: Any) -> None:
    res = client.create_container(BUSYBOX, "true", host_config=client.create_host_config(privileged=True, network_mode="none"))
    client.start(res["Id"])
    client.wait(res["Id"])
    inspect = client.inspect_container(res["Id"])
    assert inspect["Id"].startswith(res["Id"]) and inspect["HostConfig"]["Privileged"] is True
    assert inspect["State"]["ExitCode"] == 0


@pytest.mark.parametrize("groups", [[1000, 1001], ["1000", "1001"]])
def test_group_ids(client: Any, api: Api, groups: list[Any]) -> None:  # noqa: F811
    cid = run(client, BUSYBOX, "id -G", host_config=client.create_host_config(group_add=groups))
    assert {"1000", "1001"} <= set(api.output(cid).split())


def test_valid_log_driver_and_log_opt(client: Any) -> None:
    log_config = docker.types.LogConfig(type="json-file", config={"max-file": "100"})
    container = client.create_container(BUSYBOX, ["true"], host_config=client.create_host_config(log_config=log_config))
    client.start(container)
    info = client.inspect_container(container)["HostConfig"]["LogConfig"]
    assert info == {"Type": "json-file", "Config": {"max-file": "100"}}


def test_invalid_log_driver_raises_exception(client: Any) -> None:
    log_config = docker.types.LogConfig(type="asdf-nope", config={})
    with pytest.raises(docker.errors.APIError) as excinfo:
        container = client.create_container(BUSYBOX, ["true"], host_config=client.create_host_config(log_config=log_config))
        client.start(container)
    assert excinfo.value.explanation == "logger: no log driver named 'asdf-nope' is registered"


@pytest.mark.parametrize(("kind", "config", "want"), [("", {"max-file": "100"}, {"max-file": "100"}), ("json-file", None, {})])
def test_valid_log_driver_defaults(client: Any, kind: str, config: Any, want: dict[str, str]) -> None:
    log_config = docker.types.LogConfig(type=kind, config=config)
    container = client.create_container(BUSYBOX, ["true"], host_config=client.create_host_config(log_config=log_config))
    client.start(container)
    info = client.inspect_container(container)["HostConfig"]["LogConfig"]
    assert info == {"Type": "json-file", "Config": want}


def test_create_with_memory_constraints(client: Any) -> None:
    ctnr = client.create_container(BUSYBOX, "true", host_config=client.create_host_config(memswap_limit="1G", mem_limit="700M"))
    client.start(ctnr)
    host_config = client.inspect_container(ctnr)["HostConfig"]
    assert host_config["Memory"] == 700 << 20 and host_config["MemorySwap"] == 1 << 30
    ctnr = client.create_container(BUSYBOX, "true", host_config=client.create_host_config(mem_swappiness=40))
    assert "MemorySwappiness" in client.inspect_container(ctnr)["HostConfig"]


def test_create_with_environment_variable_no_value(client: Any) -> None:
    container = client.create_container(BUSYBOX, ["echo"], environment={"Foo": None, "Other": "one", "Blank": ""})
    env = client.inspect_container(container["Id"])["Config"]["Env"]
    assert {"Foo", "Other=one", "Blank="} <= set(env)


def test_create_with_tmpfs_isolation_auto_remove_stop_timeout_init(client: Any) -> None:
    tmpfs = {"/tmp1": "size=3M"}
    c = client.create_container(BUSYBOX, ["echo"], host_config=client.create_host_config(tmpfs=tmpfs))
    assert client.inspect_container(c)["HostConfig"]["Tmpfs"] == tmpfs
    c = client.create_container(BUSYBOX, ["echo"], host_config=client.create_host_config(isolation="default"))
    assert client.inspect_container(c)["HostConfig"]["Isolation"] == "default"
    c = client.create_container(BUSYBOX, ["echo", "test"], host_config=client.create_host_config(auto_remove=True))
    assert client.inspect_container(c)["HostConfig"]["AutoRemove"] is True
    c = client.create_container(BUSYBOX, ["echo", "test"], stop_timeout=25)
    assert client.inspect_container(c)["Config"]["StopTimeout"] == 25
    c = client.create_container(BUSYBOX, "true", host_config=client.create_host_config(init=True))
    assert client.inspect_container(c)["HostConfig"]["Init"] is True


def test_create_container_with_volumes_from(client: Any, api: Api) -> None:  # noqa: F811
    vol_names = ["foobar_vol0", "foobar_vol1"]
    for i, name in enumerate(vol_names):
        cid = client.create_container(BUSYBOX, ["sh", "-c", f"echo {i} > /v{i}/f"], name=name, volumes=[f"/v{i}"])["Id"]
        client.start(cid)
        client.wait(cid)
    res = client.create_container(BUSYBOX, ["sh", "-c", "cat /v0/f /v1/f; touch /v1/x 2>/dev/null || echo ro"],
                                  host_config=client.create_host_config(volumes_from=["foobar_vol0", "foobar_vol1:ro"], network_mode="none"))
    client.start(res["Id"])
    assert client.wait(res["Id"])["StatusCode"] == 0
    info = client.inspect_container(res["Id"])
    assert len(info["HostConfig"]["VolumesFrom"]) == len(vol_names)
    assert api.output(res["Id"]) == "0\n1\nro\n"
    with pytest.raises(docker.errors.NotFound):
        client.create_container(BUSYBOX, "true", host_config=client.create_host_config(volumes_from=["nosuch"]))


def test_create_with_device_cgroup_rules(client: Any, api: Api) -> None:  # noqa: F811
    rule = "c 7:128 rwm"
    ctnr = client.create_container(BUSYBOX, "cat /sys/fs/cgroup/devices/devices.list",
                                   host_config=client.create_host_config(device_cgroup_rules=[rule]))
    assert client.inspect_container(ctnr)["HostConfig"]["DeviceCgroupRules"] == [rule]
    client.start(ctnr)
    client.wait(ctnr)
    if Path("/sys/fs/cgroup/devices").is_dir():  # cgroup v1 devices controller
        assert rule in api.output(ctnr["Id"])


# ------------------------------------------------------------------ VolumeBindTest


@pytest.fixture
def bind_origin(client: Any) -> Iterator[str]:
    origin = tempfile.mkdtemp()
    try:
        run(client, BUSYBOX, ["touch", "/mnt/shared.txt"], volumes={"/mnt": {}},
            host_config=client.create_host_config(binds={origin: {"bind": "/mnt", "ro": False}}, network_mode="none"))
        yield origin
    finally:
        import shutil

        shutil.rmtree(origin, ignore_errors=True)


def _check_mount(inspect_data: dict[str, Any], source: str, rw: bool) -> None:
    [mount] = [m for m in inspect_data["Mounts"] if m["Destination"] == "/mnt"]
    assert mount["Source"] == source and mount["RW"] == rw


@pytest.mark.parametrize("ro", [False, True])
def test_create_with_binds(client: Any, api: Api, bind_origin: str, ro: bool) -> None:  # noqa: F811
    cid = run(client, BUSYBOX, ["ls", "/mnt"], volumes={"/mnt": {}},
              host_config=client.create_host_config(binds={bind_origin: {"bind": "/mnt", "ro": ro}}, network_mode="none"))
    assert "shared.txt" in api.output(cid)
    _check_mount(client.inspect_container(cid), bind_origin, not ro)


@pytest.mark.parametrize("ro", [False, True])
def test_create_with_mounts(client: Any, api: Api, bind_origin: str, ro: bool) -> None:  # noqa: F811
    mount = docker.types.Mount(type="bind", source=bind_origin, target="/mnt", read_only=ro)
    cid = run(client, BUSYBOX, ["ls", "/mnt"], host_config=client.create_host_config(mounts=[mount]))
    assert "shared.txt" in api.output(cid)
    _check_mount(client.inspect_container(cid), bind_origin, not ro)


def test_create_with_volume_mount(client: Any) -> None:
    mount = docker.types.Mount(type="volume", source="dockerpyvol", target="/mnt", labels={"com.dockerpy.test": "true"})
    container = client.create_container(BUSYBOX, ["true"], host_config=client.create_host_config(mounts=[mount]))
    [m] = [m for m in client.inspect_container(container)["Mounts"] if m["Destination"] == "/mnt"]
    assert m["Name"] == "dockerpyvol" and m["RW"] is True
    assert client.inspect_volume("dockerpyvol")["Labels"] == {"com.dockerpy.test": "true"}


# ------------------------------------------------------------------ Rename, Start, Wait


def test_rename_container(client: Any) -> None:
    res = client.create_container(BUSYBOX, "true")
    client.rename(res, "hong_meiling")
    assert client.inspect_container(res["Id"])["Name"] == "/hong_meiling"


def test_start_container_with_dict_instead_of_id(client: Any) -> None:
    res = client.create_container(BUSYBOX, "true")
    client.start(res)
    inspect = client.inspect_container(res["Id"])
    assert inspect["Id"].startswith(res["Id"]) and "Running" in inspect["State"]
    if not inspect["State"]["Running"]:
        assert inspect["State"]["ExitCode"] == 0


def test_run_shlex_commands(client: Any) -> None:
    commands = [
        "true",
        'echo "The Young Descendant of Tepes & Septette for the Dead Princess"',
        'echo -n "The Young Descendant of Tepes & Septette for the Dead Princess"',
        '/bin/sh -c "echo Hello World"',
        "/bin/sh -c 'echo \"Hello World\"'",
        'echo "\\"Night of Nights\\""',
        'true && echo "Night of Nights"',
    ]
    for cmd in commands:
        cid = client.create_container(BUSYBOX, cmd)["Id"]
        client.start(cid)
        assert client.wait(cid)["StatusCode"] == 0, cmd


def test_wait(client: Any) -> None:
    res = client.create_container(BUSYBOX, ["sleep", "1"])
    client.start(res)
    assert client.wait(res)["StatusCode"] == 0
    state = client.inspect_container(res)["State"]
    assert state["Running"] is False and state["ExitCode"] == 0


def test_wait_with_condition(client: Any) -> None:
    ctnr = client.create_container(BUSYBOX, "true")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.wait(ctnr, condition="removed", timeout=1)
    ctnr = client.create_container(BUSYBOX, ["sleep", "1"], host_config=client.create_host_config(auto_remove=True))
    client.start(ctnr)
    assert client.wait(ctnr, condition="removed", timeout=5)["StatusCode"] == 0


# ------------------------------------------------------------------ Stop, Kill, Restart, Remove


def test_stop(client: Any) -> None:
    cid = client.create_container(BUSYBOX, ["sleep", "9999"])["Id"]
    client.start(cid)
    client.stop(cid, timeout=1)
    assert client.inspect_container(cid)["State"]["Running"] is False


@pytest.mark.parametrize("sig", [None, signal.SIGKILL, "SIGKILL", 9])
def test_kill(client: Any, sig: Any) -> None:
    cid = client.create_container(BUSYBOX, ["sleep", "60"])["Id"]
    client.start(cid)
    if sig is None:
        client.kill(cid)
    else:
        client.kill(cid, signal=sig)
        assert client.wait(cid)["StatusCode"] != 0
    state = client.inspect_container(cid)["State"]
    assert state["ExitCode"] != 0 and state["Running"] is False


def test_restart(client: Any) -> None:
    cid = client.create_container(BUSYBOX, ["sleep", "9999"])["Id"]
    client.start(cid)
    start1 = client.inspect_container(cid)["State"]["StartedAt"]
    client.restart(cid, timeout=1)
    info = client.inspect_container(cid)["State"]
    assert info["StartedAt"] != start1 and info["Running"] is True
    client.kill(cid)


def test_remove(client: Any) -> None:
    cid = run(client, BUSYBOX, ["true"])
    client.remove_container(cid)
    assert not [x for x in client.containers(all=True) if x["Id"].startswith(cid)]


# ------------------------------------------------------------------ Pause, Prune, Update, CPU


def test_pause_unpause(client: Any) -> None:
    cid = client.create_container(BUSYBOX, ["sleep", "9999"])["Id"]
    client.start(cid)
    client.pause(cid)
    state = client.inspect_container(cid)["State"]
    assert (state["ExitCode"], state["Running"], state["Paused"]) == (0, True, True)
    client.unpause(cid)
    state = client.inspect_container(cid)["State"]
    assert (state["ExitCode"], state["Running"], state["Paused"]) == (0, True, False)


def test_prune_containers(client: Any) -> None:
    c1 = client.create_container(BUSYBOX, ["sh", "-c", "echo hello > /data.txt"])
    c2 = client.create_container(BUSYBOX, ["sleep", "9999"])
    client.start(c1)
    client.start(c2)
    client.wait(c1)
    result = client.prune_containers()
    assert c1["Id"] in result["ContainersDeleted"] and result["SpaceReclaimed"] > 0
    assert c2["Id"] not in result["ContainersDeleted"]


def test_update_container(client: Any) -> None:
    container = client.create_container(BUSYBOX, "top", host_config=client.create_host_config(mem_limit=400 << 20))
    client.start(container)
    client.update_container(container, mem_limit=300 << 20)
    assert client.inspect_container(container)["HostConfig"]["Memory"] == 300 << 20


def test_restart_policy_update(client: Any) -> None:
    container = client.create_container(BUSYBOX, ["sleep", "60"], host_config=client.create_host_config(
        restart_policy={"MaximumRetryCount": 0, "Name": "always"}))
    client.start(container)
    client.update_container(container, restart_policy={"MaximumRetryCount": 42, "Name": "on-failure"})
    assert client.inspect_container(container)["HostConfig"]["RestartPolicy"] == {"MaximumRetryCount": 42, "Name": "on-failure"}


def test_container_cpu_shares_cpuset_runtime(client: Any) -> None:
    c = client.create_container(BUSYBOX, "ls", host_config=client.create_host_config(cpu_shares=512))
    client.start(c)
    assert client.inspect_container(c)["HostConfig"]["CpuShares"] == 512
    cpus = "0,1" if os.cpu_count() and os.cpu_count() >= 2 else "0"  # type: ignore[operator]
    c = client.create_container(BUSYBOX, "ls", host_config=client.create_host_config(cpuset_cpus=cpus))
    client.start(c)
    assert client.inspect_container(c)["HostConfig"]["CpusetCpus"] == cpus
    c = client.create_container(BUSYBOX, ["echo", "test"], runtime="runc")
    assert client.inspect_container(c)["HostConfig"]["Runtime"] == "runc"
    client.start(c)
    assert client.wait(c)["StatusCode"] == 0


# ------------------------------------------------------------------ api_volume_test.py


def test_create_volume(client: Any) -> None:
    result = client.create_volume("perfectcherryblossom")
    assert result["Name"] == "perfectcherryblossom" and result["Driver"] == "local"


def test_create_volume_invalid_driver(client: Any) -> None:
    with pytest.raises(docker.errors.APIError) as cm:
        client.create_volume("perfectcherryblossom", "this-plugin-does-not-exist")
    assert cm.value.response.status_code in (400, 404)


def test_list_and_inspect_volumes(client: Any) -> None:
    info = client.create_volume("imperishablenight")
    assert info in client.volumes()["Volumes"]
    assert client.inspect_volume("imperishablenight") == info


def test_inspect_and_remove_nonexistent_volume(client: Any) -> None:
    with pytest.raises(docker.errors.NotFound):
        client.inspect_volume("embodimentofscarletdevil")
    with pytest.raises(docker.errors.NotFound):
        client.remove_volume("shootthebullet")


@pytest.mark.parametrize("force", [False, True])
def test_remove_volume(client: Any, force: bool) -> None:
    client.create_volume("shootthebullet")
    client.remove_volume("shootthebullet", force=force)
    assert "shootthebullet" not in [v["Name"] for v in client.volumes()["Volumes"] or []]


def test_prune_volumes(client: Any) -> None:
    v = client.create_volume()
    assert v["Name"] in client.prune_volumes()["VolumesDeleted"]


def test_models_volume_round_trip(api: Api, leak_check: None) -> None:  # noqa: F811
    models = docker.DockerClient(base_url=api.d.url, version="auto")
    try:
        vol = models.volumes.create("modelvol", labels={"a": "b"})
        assert models.volumes.get("modelvol").attrs["Labels"] == {"a": "b"}
        assert [v.name for v in models.volumes.list()] == ["modelvol"]
        out = models.containers.run(BUSYBOX, ["sh", "-c", "echo x > /v/f"], volumes={"modelvol": {"bind": "/v", "mode": "rw"}},
                                    detach=True)
        assert out.wait()["StatusCode"] == 0
        out.remove()
        assert (Path(vol.attrs["Mountpoint"]) / "f").read_text() == "x\n"
        vol.remove()
    finally:
        api.remove_all()
        models.close()
