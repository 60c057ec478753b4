"""The real docker CLI against sampand runs the tutorial's container chapter: run -d, ps,
exec -it under a PTY, logs, stats --no-stream with the memory limit, inspect, stop/start,
rm -f $(docker ps -aq), commit, a memory limit enforced by the OOM killer, --cpu-shares in the
cgroup."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

pytestmark = pytest.mark.root
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)
if not os.path.exists(DOCKER):
    pytest.skip("the docker CLI is not installed", allow_module_level=True)


def docker(api: Api, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:  # noqa: F811
    p = subprocess.run([DOCKER, *args], env=api.d.env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"docker {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def test_tutorial_container_chapter(api: Api, busybox_rootfs_tar: Path) -> None:  # noqa: F811
    docker(api, "import", "-c", 'CMD ["sh"]', str(busybox_rootfs_tar), "busybox")
    cid = docker(api, "run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "8080").stdout.strip()
    assert len(cid) == 64
    ps = docker(api, "ps").stdout
    assert "web" in ps and "Up " in ps and '"httpd -f -p 8080"' in ps
    docker(api, "run", "--name", "done", "busybox", "sh", "-c", "echo bye")
    assert "done" not in docker(api, "ps").stdout
    ps_a = docker(api, "ps", "-a").stdout
    assert "done" in ps_a and "Exited (0)" in ps_a

    # exec -it under a PTY: an interactive shell
    master, slave = pty.openpty()
    proc = subprocess.Popen([DOCKER, "exec", "-it", "web", "sh"], stdin=slave, stdout=slave, stderr=slave,
                            env=api.d.env(), start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        os.write(master, b"echo $((6*7))-ok; hostname\n")
        deadline = time.monotonic() + 20
        while b"42-ok" not in seen and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert b"42-ok" in seen, seen
        os.write(master, b"exit 3\n")
        assert proc.wait(20) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)

    docker(api, "exec", "web", "sh", "-c", "echo to-stdout; echo to-stderr >&2")
    logs = docker(api, "logs", "done")
    assert logs.stdout == "bye\n"

    inspect = json.loads(docker(api, "inspect", "web").stdout)[0]
    assert inspect["State"]["Running"] is True and inspect["Name"] == "/web"
    assert inspect["Config"]["Cmd"] == ["httpd", "-f", "-p", "8080"]
    top = docker(api, "top", "web").stdout
    assert "httpd -f -p 8080" in top

    docker(api, "stop", "-t", "1", "web")
    assert json.loads(docker(api, "inspect", "web").stdout)[0]["State"]["Status"] == "exited"
    docker(api, "start", "web")
    assert json.loads(docker(api, "inspect", "web").stdout)[0]["State"]["Running"] is True

    docker(api, "exec", "web", "sh", "-c", "echo committed-file > /srv.txt")
    image_id = docker(api, "commit", "-m", "tutorial", "web", "tutorial/web:v1").stdout.strip()
    assert image_id.startswith("sha256:")
    out = docker(api, "run", "--rm", "tutorial/web:v1", "cat", "/srv.txt").stdout
    assert out == "committed-file\n"
    docker(api, "cp", "web:/srv.txt", str(Path(api.d.dir) / "copied.txt"))
    assert (Path(api.d.dir) / "copied.txt").read_text() == "committed-file\n"
    diff = docker(api, "diff", "web").stdout
    assert "A /srv.txt" in diff

    ids = docker(api, "ps", "-aq").stdout.split()
    assert len(ids) == 2
    docker(api, "rm", "-f", *ids)
    assert docker(api, "ps", "-aq").stdout.strip() == ""
    docker(api, "rmi", "tutorial/web:v1")


def test_stats_no_stream_shows_the_memory_limit(api: Api) -> None:  # noqa: F811
    docker(api, "run", "-d", "--name", "limited", "--memory", "100M", "busybox", "sleep", "60")
    out = docker(api, "stats", "--no-stream", "limited").stdout
    header, row = out.splitlines()[:2]
    assert "MEM USAGE / LIMIT" in header and "PIDS" in header
    assert "/ 100MiB" in row and "limited" in row
    fmt = docker(api, "stats", "--no-stream", "--format", "{{.Name}} {{.MemPerc}} {{.PIDs}}", "limited").stdout
    name, perc, pids = fmt.split()
    assert name == "limited" and perc.endswith("%") and pids == "1"


def test_memory_limit_oom_killed(api: Api) -> None:  # noqa: F811
    cid = docker(api, "run", "-d", "--memory", "100M", "--memory-swap", "100M", "busybox",
                 "sh", "-c", "tail /dev/zero").stdout.strip()
    code = docker(api, "wait", cid, timeout=120).stdout.strip()
    state = json.loads(docker(api, "inspect", cid).stdout)[0]["State"]
    assert code == "137" and state["ExitCode"] == 137
    assert state["OOMKilled"] is True


def test_cpu_shares_in_the_cgroup(api: Api) -> None:  # noqa: F811
    cid = docker(api, "run", "-d", "--cpu-shares", "10", "busybox", "sleep", "60").stdout.strip()
    v1 = Path(f"/sys/fs/cgroup/cpu/sampan/{cid}/cpu.shares")
    v2 = Path(f"/sys/fs/cgroup/sampan/{cid}/cpu.weight")
    if v1.exists():
        assert v1.read_text().strip() == "10"
    else:
        assert v2.exists()
        assert int(v2.read_text()) == 1  # runc's conversion of 10 shares
    assert json.loads(docker(api, "inspect", cid).stdout)[0]["HostConfig"]["CpuShares"] == 10


def _pty_session(api: Api, args: list[str]) -> tuple[subprocess.Popen[bytes], int]:  # noqa: F811
    master, slave = pty.openpty()
    proc = subprocess.Popen([DOCKER, *args], stdin=slave, stdout=slave, stderr=slave,
                            env=api.d.env(), start_new_session=True)
    os.close(slave)
    return proc, master


def _read_until(master: int, needle: bytes, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    assert needle in seen, seen
    return seen


def test_run_it_detach_keys_then_attach(api: Api) -> None:  # noqa: F811
    proc, master = _pty_session(api, ["run", "-it", "--name", "shell", "busybox", "sh"])
    try:
        time.sleep(0.5)
        os.write(master, b"echo $((2+3))-five\n")
        _read_until(master, b"5-five")
        os.write(master, b"\x10\x11")  # ctrl-p ctrl-q: detach, the shell keeps running
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert json.loads(docker(api, "inspect", "shell").stdout)[0]["State"]["Running"] is True
    proc, master = _pty_session(api, ["attach", "shell"])
    try:
        time.sleep(0.5)
        os.write(master, b"echo again-$((1+1))\n")
        _read_until(master, b"again-2")
        os.write(master, b"exit 4\n")
        assert proc.wait(20) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert json.loads(docker(api, "inspect", "shell").stdout)[0]["State"]["ExitCode"] == 4
