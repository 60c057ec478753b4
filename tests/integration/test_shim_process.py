"""The shim with a stand-in runtime: a runc-compatible script that runs the bundle's args as a
plain child process (no namespaces), as the brief allows until the real runtime lands."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sampan import errors
from sampan.runtime.forkserver import ForkServer, ShimHandle, start_shim
from sampan.runtime.shimproto import ShimClient, read_frames

pytestmark = pytest.mark.root

FAKE_RUNTIME = '''#!{python} -S
"""A runc-shaped runtime without isolation: create forks the process (held on a fifo)."""
import json, os, shutil, signal, socket, sys
args = sys.argv[1:]
root = "/run/fake-runtime"
while args and args[0].startswith("--"):
    flag = args.pop(0)
    value = args.pop(0)
    if flag == "--root":
        root = value
cmd = args.pop(0)
opts, pos = {{}}, []
while args:
    a = args.pop(0)
    if a in ("--bundle", "--pid-file", "--console-socket"):
        opts[a] = args.pop(0)
    elif a.startswith("--"):
        opts[a] = True
    else:
        pos.append(a)
state = os.path.join(root, pos[0])
fifo = os.path.join(state, "exec.fifo")
if cmd == "create":
    with open(os.path.join(opts["--bundle"], "config.json")) as f:
        argv = json.load(f)["process"]["args"]
    os.makedirs(state)
    os.mkfifo(fifo)
    master = slave = None
    if "--console-socket" in opts:
        master, slave = os.openpty()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if slave is not None:
            import fcntl, termios
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for i in range(3):
                os.dup2(slave, i)
        fd = os.open(fifo, os.O_RDONLY)
        os.read(fd, 1)
        os.execvp(argv[0], argv)
    with open(os.path.join(state, "pid"), "w") as f:
        f.write(str(pid))
    with open(opts["--pid-file"], "w") as f:
        f.write(str(pid))
    if master is not None:
        s = socket.socket(socket.AF_UNIX)
        s.connect(opts["--console-socket"])
        socket.send_fds(s, [b"/dev/pts/x"], [master])
elif cmd == "start":
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, b"0")
    os.unlink(fifo)
elif cmd == "kill":
    with open(os.path.join(state, "pid")) as f:
        os.kill(int(f.read()), int(pos[1]))
elif cmd == "delete":
    if not os.path.isdir(state):
        sys.stderr.write("container does not exist\\n")
        sys.exit(1)
    shutil.rmtree(state)
'''


@pytest.fixture
def fake_runtime(tmp_path: Path) -> Path:
    path = tmp_path / "fake-runc"
    path.write_text(FAKE_RUNTIME.format(python=sys.executable))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def forkserver() -> Iterator[ForkServer]:
    fs = ForkServer.start()
    yield fs
    fs.close()


class Env:
    def __init__(self, tmp_path: Path, runtime: Path, fs: ForkServer | None) -> None:
        self.tmp = tmp_path
        self.runtime = runtime
        self.fs = fs
        self.handles: list[ShimHandle] = []

    def start(self, args: list[str], name: str = "c1", **kw: Any) -> tuple[ShimHandle, ShimClient]:
        bundle = self.tmp / f"bundle-{name}"
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps({"process": {"args": args}}))
        kw.setdefault("forkserver", self.fs)
        h = start_shim(
            container_id=f"sampan-{name}",
            bundle=str(bundle),
            runtime=str(self.runtime),
            runtime_root=str(self.tmp / "rt"),
            state_dir=str(self.tmp / f"state-{name}"),
            log_path=str(self.tmp / f"{name}-json.log"),
            **kw,
        )
        self.handles.append(h)
        return h, ShimClient(h.socket_path)

    def cleanup(self) -> None:
        for h in self.handles:
            try:
                ShimClient(h.socket_path).delete(force=True)
            except errors.SampanError:
                pass
            _wait_gone(h.pid)


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:  # gone between the kill(0) and the open (ENOENT or ESRCH)
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def env(tmp_path: Path, fake_runtime: Path, forkserver: ForkServer) -> Iterator[Env]:
    e = Env(tmp_path, fake_runtime, forkserver)
    yield e
    e.cleanup()


def log_entries(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exit_status_log_and_state(env: Env) -> None:
    h, client = env.start(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert client.status()["status"] == "created"
    assert h.container_pid > 0
    client.start()
    st = client.wait(timeout=10)
    assert (st["status"], st["exit_code"], st["signal"]) == ("stopped", 3, None)
    assert st["exited_at"].endswith("Z")
    saved = json.loads((env.tmp / "state-c1" / "state.json").read_text())
    assert saved["exit_code"] == 3 and saved["status"] == "stopped"
    entries = log_entries(env.tmp / "c1-json.log")
    assert sorted((e["stream"], e["log"]) for e in entries) == [
        ("stderr", "err\n"),
        ("stdout", "out\n"),
    ]
    with pytest.raises(errors.ContainerNotRunning):
        client.signal(signal.SIGTERM)
    client.delete()
    _wait_gone(h.pid)
    assert not os.path.exists(h.socket_path)
    assert not (env.tmp / "rt" / "sampan-c1").exists()  # the runtime's delete ran


def test_signal_records_128_plus_n(env: Env) -> None:
    _, client = env.start(["sleep", "30"])
    client.start()
    assert client.status()["status"] == "running"
    with pytest.raises(errors.ContainerRunning):
        client.delete()
    client.signal(signal.SIGTERM)
    st = client.wait(timeout=10)
    assert (st["exit_code"], st["signal"]) == (143, signal.SIGTERM)


def test_attach_stdin_and_frames(env: Env) -> None:
    _, client = env.start(["sh", "-c", "cat; echo done >&2"], stdin_open=True)
    sock = client.attach(stdin=True, close_stdin=True)
    assert client.status()["tty"] is False
    client.start()
    with sock:
        sock.sendall(b"hello\n")
        sock.shutdown(socket.SHUT_WR)
        buf = bytearray()
        while chunk := sock.recv(65536):
            buf += chunk
    frames = read_frames(buf)
    assert (1, b"hello\n") in frames and (2, b"done\n") in frames
    assert client.wait(timeout=10)["exit_code"] == 0


def test_tty_resize_and_raw_stream(env: Env) -> None:
    _, client = env.start(["sh", "-c", "read x; stty size; echo got $x"], tty=True, stdin_open=True)
    client.resize(40, 100)
    sock = client.attach(stdin=True)
    assert client.status()["tty"] is True
    client.start()
    with sock:
        sock.sendall(b"abc\n")
        buf = bytearray()
        while chunk := sock.recv(65536):
            buf += chunk
    assert b"40 100" in buf and b"got abc" in buf
    assert client.wait(timeout=10)["exit_code"] == 0
    logged = "".join(e["log"] for e in log_entries(env.tmp / "c1-json.log"))
    assert "40 100" in logged


def test_survives_launcher_and_is_readopted(env: Env, fake_runtime: Path, tmp_path: Path) -> None:
    own = ForkServer.start()
    env.fs = own
    h, client = env.start(["sleep", "30"])
    client.start()
    own.close()  # the "daemon" side goes away: its fork server exits
    with open(f"/proc/{h.pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) != own.pid
    again = ShimClient(str(tmp_path / "state-c1" / "shim.sock"))  # a restarted daemon
    assert again.status()["pid"] == h.container_pid
    with open(f"/proc/{h.container_pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == h.pid  # the shim is its parent
    again.signal(signal.SIGKILL)
    assert again.wait(timeout=10)["exit_code"] == 137


def test_create_failure_is_one_error_and_leaves_nothing(env: Env, tmp_path: Path) -> None:
    (tmp_path / "rt" / "sampan-bad").mkdir(parents=True)  # the runtime's create will fail
    with pytest.raises(errors.SampanError, match="fake-runc create failed"):
        env.start(["true"], name="bad")
    assert not (tmp_path / "state-bad" / "shim.sock").exists()
    with pytest.raises(errors.NotFound, match="could not be executed"):
        start_shim(
            container_id="sampan-x",
            bundle=str(tmp_path),
            runtime="/nonexistent/runc",
            state_dir=str(tmp_path / "state-x"),
            log_path=str(tmp_path / "x.log"),
            forkserver=env.fs,
        )


def test_log_rotation_in_shim(env: Env) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    _, client = env.start(["sh", "-c", script], log_max_size=4096, log_max_files=2)
    client.start()
    assert client.wait(timeout=10)["exit_code"] == 0
    log = env.tmp / "c1-json.log"
    assert log.exists() and Path(f"{log}.1").exists() and not Path(f"{log}.2").exists()
    assert log_entries(log)[-1]["log"] == "line-299-xxxxxxxxxxxxxxxxxxxx\n"


def test_fresh_interpreter_launcher(env: Env) -> None:
    _, client = env.start(["sh", "-c", "echo hi"], forkserver=None)
    client.start()
    assert client.wait(timeout=10)["exit_code"] == 0


def _smem(pids: list[int]) -> list[tuple[int, int, int]]:
    """(uss, pss, rss) in KiB for each pid, from Debian's smem."""
    out = subprocess.run(
        ["smem", "-c", "pid uss pss rss"], capture_output=True, text=True, check=True
    ).stdout
    rows = {int(line.split()[0]): line.split()[1:] for line in out.splitlines()[1:]}
    return [tuple(int(x) for x in rows[p]) for p in pids if p in rows]  # type: ignore[misc]


@pytest.mark.skipif(shutil.which("smem") is None, reason="smem is not installed")
def test_ten_shims_memory(env: Env) -> None:
    """Ten running stand-in containers: per-shim PSS stays small (measured ~1.55 MB here; the
    issue's target is 1.6 MB, the margin is for other processes sharing libpython)."""
    handles = []
    for i in range(10):
        h, client = env.start(["sleep", "60"], name=f"m{i}")
        client.start()
        handles.append(h)
    time.sleep(0.3)
    sizes = _smem([h.pid for h in handles])
    assert len(sizes) == 10
    uss, pss, rss = (sum(s[k] for s in sizes) / len(sizes) for k in range(3))
    print(f"shim memory, 10 containers: USS {uss:.0f} KiB, PSS {pss:.0f} KiB, RSS {rss:.0f} KiB")
    assert pss < 2000, f"PSS per shim {pss:.0f} KiB"


def test_bad_requests_get_errors_and_the_shim_lives_on(env: Env) -> None:
    h, client = env.start(["sleep", "30"], tty=True)
    for raw in (b"not json\n", b'{"op": "resize"}\n', b'{"op": "nope"}\n', b"[1, 2]\n"):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(h.socket_path)
        with sock:
            sock.sendall(raw)
            reply = json.loads(sock.makefile("rb").readline())
        assert reply["ok"] is False and reply["kind"] in ("Internal", "InvalidArgument"), reply
    with pytest.raises(errors.InvalidArgument, match="unknown shim request"):
        client.call("frobnicate")
    assert client.status()["status"] == "created"


DAEMON = """
import json, sys, time
from sampan.runtime.forkserver import ForkServer, start_shim
fs = ForkServer.start()
h = start_shim(forkserver=fs, **json.loads(sys.argv[1]))
print(json.dumps({"forkserver": fs.pid, "shim": h.pid, "socket": h.socket_path}), flush=True)
time.sleep(600)
"""


def test_forkserver_exits_with_a_killed_daemon_and_its_shims_live_on(env: Env) -> None:
    bundle = env.tmp / "bundle-d1"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"process": {"args": ["sleep", "30"]}}))
    shim = {
        "container_id": "sampan-d1",
        "bundle": str(bundle),
        "runtime": str(env.runtime),
        "runtime_root": str(env.tmp / "rt"),
        "state_dir": str(env.tmp / "state-d1"),
        "log_path": str(env.tmp / "d1-json.log"),
    }
    root = str(Path(__file__).resolve().parents[2])
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, json.dumps(shim)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": root},
    )
    try:
        assert daemon.stdout is not None
        started = json.loads(daemon.stdout.readline())
        env.handles.append(ShimHandle(started["shim"], started["socket"], 0))
        client = ShimClient(started["socket"])
        client.start()
    finally:
        daemon.kill()  # SIGKILL: the control socket closes with the process
        daemon.wait()
    deadline = time.monotonic() + 5
    while _alive(started["forkserver"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(started["forkserver"]), "the fork server outlived its daemon"
    assert _alive(started["shim"])
    assert client.status()["status"] == "running"
    client.signal(signal.SIGKILL)
    assert client.wait(timeout=10)["exit_code"] == 137


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
