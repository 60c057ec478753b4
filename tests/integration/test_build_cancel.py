"""A build whose client goes away during a long RUN step stops at once: the step's container
is killed and removed (processes, mounts, cgroup, runtime state), nothing is committed or
cached, and the daemon goes on building.  Both through ``POST /build`` on a raw socket that
is closed, and through ``sampan build`` and ``docker build`` interrupted with SIGINT (Ctrl-C)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sampan.build.builder import Builder, BuildOptions
from sampan.build.runserver import RunServer
from sampan.build.runtime_backend import RuntimeBackend
from sampan.errors import Unavailable
from sampan.storage.testing import build_tar
from tests.conftest import _descendants, _is_zombie, _mounts
from tests.daemon_fixture import Daemon
from tests.integration.build_support import open_lab
from tests.integration.container_daemon import busybox_daemon  # noqa: F401

REPO = Path(__file__).resolve().parent.parent.parent
pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

#: The step's output says "started-42" (the step line, echoed before, does not)
LONG_STEP = "FROM busybox\nRUN echo started-$((6*7)); sleep 60; echo never > /never\n"
#: How long the daemon may take to clean up after the client went away (the goal is ~1 s).
WITHIN = 3.0


def context_tar(dockerfile: str) -> bytes:
    return build_tar({"Dockerfile": dockerfile.encode()})


def post_build(d: Daemon, dockerfile: str, query: str) -> socket.socket:
    """``POST /build`` on a raw socket; the caller reads the answer and closes it."""
    body = context_tar(dockerfile)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(d.socket))
    s.sendall(f"POST /build?{query} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-tar\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return s


def read_until(s: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = s.recv(65536)
        assert chunk, f"the stream ended before {marker!r}: {data!r}"
        data += chunk
    return data


def step_ids(d: Daemon) -> list[str]:
    """The runtime IDs of the RUN steps that exist now (their state directories)."""
    runtime = d.exec_root / "build" / "runtime"
    return sorted(p.parent.name for p in runtime.glob("*/state.json")) if runtime.is_dir() else []


def sleeping(ancestor: int) -> list[str]:
    """The step's processes: descendants of ``ancestor`` running ``sleep``."""
    out = []
    for pid in _descendants(ancestor):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[0] == b"sleep" and not _is_zombie(pid):
            out.append(str(pid))
    return out


def leftovers(d: Daemon, step: str) -> dict[str, list[str]]:
    """What is left of a RUN step: its processes (the daemon's descendants running ``sleep``),
    mounts of build works, work directories, runtime state, cgroups."""
    assert d.proc is not None
    works = d.exec_root / "build" / "works"
    return {k: v for k, v in {
        "processes": sleeping(d.proc.pid),
        "mounts": sorted(m for m in _mounts() if m.startswith(str(works))),
        "works": sorted(p.name for p in works.iterdir()) if works.is_dir() else [],
        "runtime state": [i for i in step_ids(d) if i == step],
        "cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/sampan-build-{step}")],
    }.items() if v}


def wait_clean(d: Daemon, step: str, since: float) -> float:
    """Seconds from ``since`` until nothing of the step is left (fails after WITHIN + 5 s)."""
    while True:
        left = leftovers(d, step)
        elapsed = time.monotonic() - since
        if not left:
            return elapsed
        assert elapsed < WITHIN + 5, f"still there {elapsed:.1f} s after the client went away: {left}"
        time.sleep(0.05)


def images(d: Daemon) -> set[str]:
    return {i["Id"] for i in d.request("GET", "/images/json?all=1").json()}


def running_step(d: Daemon) -> str:
    [step] = step_ids(d)
    return step


def assert_builds_again(d: Daemon) -> None:
    r = d.request("POST", "/build?t=after-cancel:1", context_tar("FROM busybox\nRUN echo fine > /fine\n"),
                  headers={"Content-Type": "application/x-tar"})
    assert r.status == 200 and b"errorDetail" not in r.body, r.body
    assert any("aux" in m for m in r.lines()), r.body
    assert d.request("GET", "/images/after-cancel:1/json").status == 200
    assert d.request("GET", "/_ping").status == 200


def test_client_gone_during_run_stops_the_step(busybox_daemon: Daemon) -> None:  # noqa: F811
    before = images(busybox_daemon)
    # memory: the step gets a cgroup of its own, which must go too
    s = post_build(busybox_daemon, LONG_STEP, "t=cancelled:1&memory=67108864")
    try:
        read_until(s, b"started-42")
        step = running_step(busybox_daemon)
        assert leftovers(busybox_daemon, step)  # the step runs: the check can see it
    finally:
        s.close()
    elapsed = wait_clean(busybox_daemon, step, time.monotonic())
    print(f"RUN step gone {elapsed:.2f} s after the client closed its connection")
    assert elapsed < WITHIN
    assert busybox_daemon.proc is not None and busybox_daemon.proc.poll() is None
    assert images(busybox_daemon) == before  # nothing committed, nothing cached, no tag
    assert busybox_daemon.request("GET", "/images/cancelled:1/json").status == 404
    assert_builds_again(busybox_daemon)
    log = busybox_daemon.log_text()
    assert "Traceback" not in log, log


def cli_build(cli: str, ctx: Path) -> list[str]:
    if cli == "sampan":
        return [sys.executable, "-m", "sampan.cli", "build", "-t", "cancelled:2", str(ctx)]
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is not installed")
    return [docker, "build", "-t", "cancelled:2", str(ctx)]


@pytest.mark.parametrize("cli", ["sampan", "docker"])
def test_cli_build_sigint_stops_the_step(busybox_daemon: Daemon, tmp_path: Path, cli: str) -> None:  # noqa: F811
    """Ctrl-C of ``sampan build`` (exit 130) or ``docker build`` (legacy builder): the CLI
    closes its connection, the daemon stops the step."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(LONG_STEP)
    before = images(busybox_daemon)
    env = {**busybox_daemon.env(), "SAMPAN_HOST": busybox_daemon.url, "PYTHONPATH": str(REPO), "DOCKER_BUILDKIT": "0"}
    proc = subprocess.Popen(cli_build(cli, ctx), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        seen = b""
        while b"started-42" not in seen:
            line = proc.stdout.readline()
            assert line, f"{cli} build ended before the step started: {seen!r} {proc.stderr.read()!r}"
            seen += line
        step = running_step(busybox_daemon)
        proc.send_signal(signal.SIGINT)
        since = time.monotonic()
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if cli == "sampan":
        assert code == 130
    elapsed = wait_clean(busybox_daemon, step, since)
    print(f"RUN step gone {elapsed:.2f} s after SIGINT to {cli} build (exit {code})")
    assert elapsed < WITHIN
    assert images(busybox_daemon) == before
    assert_builds_again(busybox_daemon)


@pytest.mark.parametrize("runner", ["run server", "runtime process"])
def test_backend_stops_a_cancelled_run_step(tmp_path: Path, busybox_rootfs_tar: Path, runner: str) -> None:
    """The builder and backend alone (no daemon), through the daemon's run server and through
    a ``sampan-runtime run`` process: a step cancelled while it runs raises Unavailable at once,
    and leaves no process, mount, work or runtime state behind."""
    lab = open_lab(tmp_path / "data", busybox_rootfs_tar)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    state = tmp_path / "data" / "build-state"
    server = RunServer() if runner == "run server" else None
    log: list[str] = []
    since: list[float] = []

    def cancelled() -> bool:
        if not since and "started-42" in "".join(log):
            since.append(time.monotonic())
        return bool(since)

    backend = RuntimeBackend(lab.store, state_dir=state, runner=server, cancelled=cancelled)
    try:
        with pytest.raises(Unavailable, match="cancelled"):
            Builder(backend, lab.cache, log=log.append).build(ctx, BuildOptions(dockerfile=LONG_STEP))
        elapsed = time.monotonic() - since[0]
        print(f"{runner}: the build ended {elapsed:.2f} s after it was cancelled")
        assert elapsed < WITHIN
        assert not sleeping(os.getpid())
        assert not [m for m in _mounts() if m.startswith(str(state))]
        assert not list((state / "works").iterdir())
        assert not list((state / "runtime").glob("*/state.json"))
        assert "Successfully built" not in "".join(log)
        assert lab.cache.entries() == []
    finally:
        if server is not None:
            server.close()
        lab.close()
