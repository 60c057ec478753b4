"""``create``/``run`` flags -> the ``POST /containers/create`` body (docker's opts.go mapping)."""

from __future__ import annotations

from typing import Any

import pytest

from sampan.cli.createflags import (
    create_body,
    duration_ns,
    parse_mount,
    parse_ports,
    parse_restart,
    parse_ulimit,
    ram_bytes,
    resolve_env,
)
from sampan.cli.flags import UsageError, parse
from sampan.cli.run import RUN


def body_for(argv: list[str], environ: dict[str, str] | None = None) -> dict[str, Any]:
    opts, args = parse(RUN, argv, interspersed=False)
    return create_body(opts, args[0], args[1:], environ=environ or {}, detach=bool(opts["detach"]))


def test_run_flags_stop_at_the_image() -> None:
    opts, args = parse(RUN, ["--rm", "-it", "busybox", "sh", "-c", "echo -n hi"], interspersed=False)
    assert opts["rm"] and opts["interactive"] and opts["tty"]
    assert args == ["busybox", "sh", "-c", "echo -n hi"]


def test_foreground_run_attaches_stdout_and_stderr_and_stdin_with_i() -> None:
    config = body_for(["-i", "busybox", "cat"])
    assert (config["AttachStdin"], config["AttachStdout"], config["AttachStderr"]) == (True, True, True)
    assert config["OpenStdin"] and config["StdinOnce"] and not config["Tty"]
    assert config["Cmd"] == ["cat"] and config["Image"] == "busybox"
    detached = body_for(["-d", "-i", "busybox"])
    assert not detached["AttachStdin"] and not detached["AttachStdout"] and detached["OpenStdin"]
    assert detached["Cmd"] is None


def test_resources_and_security_fields() -> None:
    config = body_for([
        "--memory", "100m", "--memory-swap", "-1", "--memory-reservation", "50M", "--cpu-shares", "10",
        "--cpus", "1.5", "--cpuset-cpus", "0", "--pids-limit", "20", "--read-only", "--privileged",
        "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--ulimit", "nofile=1024:2048", "--init", "--stop-signal", "SIGUSR1", "--stop-timeout", "3",
        "--restart", "on-failure:3", "--runtime", "crun", "--log-opt", "max-size=1m", "busybox",
    ])
    host = config["HostConfig"]
    assert host["Memory"] == 100 << 20 and host["MemorySwap"] == -1 and host["MemoryReservation"] == 50 << 20
    assert host["CpuShares"] == 10 and host["NanoCpus"] == 1_500_000_000 and host["CpusetCpus"] == "0"
    assert host["PidsLimit"] == 20 and host["ReadonlyRootfs"] and host["Privileged"] and host["Init"]
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Runtime"] == "crun" and host["LogConfig"]["Config"] == {"max-size": "1m"}
    assert config["StopSignal"] == "SIGUSR1" and config["StopTimeout"] == 3


def test_volumes_mounts_tmpfs_and_ports() -> None:
    config = body_for([
        "-v", "data:/data:ro", "-v", "/anon", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m",
        "--tmpfs", "/run:size=64k", "-p", "127.0.0.1:8080:80", "-p", "53/udp", "--expose", "443",
        "--network", "none", "busybox",
    ])
    host = config["HostConfig"]
    assert host["Binds"] == ["data:/data:ro"] and config["Volumes"] == {"/anon": {}}
    assert host["Mounts"] == [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}]
    assert host["Tmpfs"] == {"/run": "size=64k"} and host["NetworkMode"] == "none"
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "443/tcp": {}}
    assert host["PortBindings"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "8080"}]


def test_env_labels_user_workdir_entrypoint_and_health() -> None:
    config = body_for(
        ["-e", "A=1", "-e", "FROM_HOST", "-e", "MISSING", "-l", "k=v", "-l", "bare", "-u", "1000:1000",
         "-w", "/tmp", "--entrypoint", "/bin/echo", "-h", "box", "--health-cmd", "true",
         "--health-interval", "1m30s", "--health-retries", "2", "busybox"],
        environ={"FROM_HOST": "x"},
    )
    assert config["Env"] == ["A=1", "FROM_HOST=x"]
    assert config["Labels"] == {"k": "v", "bare": ""}
    assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("1000:1000", "/tmp", "box")
    assert config["Entrypoint"] == ["/bin/echo"]
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 90 * 10**9, "Retries": 2}
    assert body_for(["--no-healthcheck", "busybox"])["Healthcheck"] == {"Test": ["NONE"]}


def test_env_file(tmp_path: Any) -> None:
    path = tmp_path / "env"
    path.write_text("# comment\n\nX=1\nY\n")
    assert body_for(["--env-file", str(path), "busybox"], environ={"Y": "2"})["Env"] == ["X=1", "Y=2"]
    with pytest.raises(UsageError, match=r"open .*nope"):
        body_for(["--env-file", str(tmp_path / "nope"), "busybox"])


@pytest.mark.parametrize(("text", "value"), [("512", 512), ("1k", 1024), ("100m", 100 << 20), ("1.5g", 3 << 29),
                                             ("2GiB", 2 << 30), ("64kb", 64 << 10), ("10B", 10)])
def test_ram_bytes(text: str, value: int) -> None:
    assert ram_bytes(text, "--memory") == value


@pytest.mark.parametrize("text", ["abc", "10x", "-1m", ""])
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        ram_bytes(text, "--memory")
    assert info.value.code == 125 and "invalid size" in str(info.value)


def test_durations() -> None:
    assert duration_ns("30s", "x") == 30 * 10**9
    assert duration_ns("500ms", "x") == 5 * 10**8
    assert duration_ns("1h2m", "x") == 3720 * 10**9
    assert duration_ns("0", "x") == 0
    with pytest.raises(UsageError, match="missing unit in duration"):
        duration_ns("10", "x")


def test_restart_policies() -> None:
    assert parse_restart("always") == {"Name": "always", "MaximumRetryCount": 0}
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(UsageError):
            parse_restart(bad)


def test_mount_and_ulimit_errors() -> None:
    assert parse_mount("type=bind,src=/a,dst=/b,readonly")["ReadOnly"] is True
    assert parse_mount("type=volume,source=v,target=/v,volume-nocopy")["VolumeOptions"] == {"NoCopy": True}
    with pytest.raises(UsageError, match="target is required"):
        parse_mount("type=bind,source=/a")
    with pytest.raises(UsageError, match="invalid mount type"):
        parse_mount("type=nfs,target=/a")
    with pytest.raises(UsageError, match="soft limit"):
        parse_ulimit("nofile=10:5")
    with pytest.raises(UsageError):
        parse_ports(["a:b"], [])


def test_conflicts() -> None:
    with pytest.raises(UsageError, match="Conflicting options: -a and -d"):
        body_for(["-d", "-a", "stdout", "busybox"])
    with pytest.raises(UsageError, match="valid streams"):
        body_for(["-a", "stdfoo", "busybox"])
    assert resolve_env(["A=", "B=x=y"], {}) == ["A=", "B=x=y"]
