"""``sampan run`` against a real sampand: exit codes, streams, stdin, --rm, and ``run -it`` as a
real interactive shell driven under a PTY (prompt, resize, Ctrl-C, detach keys)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

REPO = Path(__file__).resolve().parent.parent.parent


def env(api: Api) -> dict[str, str]:  # noqa: F811
    return {**os.environ, "SAMPAN_HOST": api.d.url, "PYTHONPATH": str(REPO)}


def sampan(api: Api, *args: str, stdin: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:  # noqa: F811
    return subprocess.run([sys.executable, "-m", "sampan.cli", *args], input=stdin, capture_output=True,
                          env=env(api), timeout=timeout, stdin=None if stdin is not None else subprocess.DEVNULL)


def test_foreground_run_returns_the_exit_code_with_separate_streams(api: Api) -> None:  # noqa: F811
    r = sampan(api, "run", "--name", "fg", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3 and r.stdout == b"out\n" and r.stderr.endswith(b"err\n")
    assert api.inspect("fg")["State"]["ExitCode"] == 3


def test_run_i_pipes_stdin_and_half_closes(api: Api) -> None:  # noqa: F811
    r = sampan(api, "run", "-i", "--rm", "busybox", "sh", "-c", "tr a-z A-Z; echo after-eof", stdin=b"hello\n")
    assert (r.returncode, r.stdout) == (0, b"HELLO\nafter-eof\n")
    assert api.call("GET", "/containers/json?all=1", status=200) == []


def test_rm_and_start_failures_exit_127_126(api: Api) -> None:  # noqa: F811
    r = sampan(api, "run", "--rm", "busybox", "no-such-command")
    assert r.returncode == 127 and b"executable file not found" in r.stderr
    r = sampan(api, "run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126 and b"permission denied" in r.stderr
    r = sampan(api, "run", "--rm", "--memory", "lots", "busybox")
    assert r.returncode == 125 and b"invalid size" in r.stderr
    r = sampan(api, "run", "--pull", "never", "no-such-image")
    assert r.returncode == 125 and b"No such image" in r.stderr
    assert api.call("GET", "/containers/json?all=1", status=200) == []


def test_sig_proxy_forwards_signals(api: Api) -> None:  # noqa: F811
    proc = subprocess.Popen(
        [sys.executable, "-m", "sampan.cli", "run", "--rm", "busybox", "sh", "-c",
         "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.1; done"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env(api),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out) == (5, b"got-term\n")


class Terminal:
    """The CLI on the slave side of a PTY, as a user's terminal."""

    def __init__(self, api: Api, *args: str) -> None:  # noqa: F811
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.environ.update(env(api))
            os.execv(sys.executable, [sys.executable, "-m", "sampan.cli", *args])
        self.size(30, 100)
        self.seen = b""

    def size(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def expect(self, needle: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"no {needle!r} in {self.seen[-500:]!r}")
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                raise AssertionError(f"terminal closed before {needle!r}: {self.seen[-500:]!r}")
            self.seen += data
        before, _, self.seen = self.seen.partition(needle)
        return before

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def wait(self, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.05)[0]:
                    self.seen += os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError("the CLI did not exit")


def test_run_it_is_an_interactive_shell(api: Api) -> None:  # noqa: F811
    term = Terminal(api, "run", "-it", "--name", "shell", "busybox", "sh")
    term.expect(b"# ")
    term.type(b"echo $((6*7))\r")
    term.expect(b"42\r\n")
    term.type(b"stty size\r")
    term.expect(b"30 100\r\n")
    term.size(50, 120)
    os.kill(term.pid, signal.SIGWINCH)
    time.sleep(0.3)
    term.type(b"stty size\r")
    term.expect(b"50 120\r\n")
    term.type(b"sleep 30\r")
    time.sleep(0.3)
    term.type(b"\x03")  # Ctrl-C reaches the shell's foreground job, not the CLI
    term.expect(b"^C")
    term.type(b"echo still-here\r")
    term.expect(b"still-here\r\n")
    term.type(b"exit 7\r")
    assert term.wait() == 7
    assert api.inspect("shell")["State"]["ExitCode"] == 7


def test_detach_keys_leave_the_cli(api: Api) -> None:  # noqa: F811
    term = Terminal(api, "run", "-it", "--detach-keys", "ctrl-x,x", "--name", "detach", "busybox", "sh")
    term.expect(b"# ")
    term.type(b"\x18x")
    assert term.wait() == 0
    term = Terminal(api, "run", "-it", "--name", "detach2", "busybox", "sh")
    term.expect(b"# ")
    term.type(b"\x10\x11")
    assert term.wait() == 0


def test_detached_container_keeps_running(api: Api) -> None:  # noqa: F811
    term = Terminal(api, "run", "-it", "--name", "keeps", "busybox", "sh")
    term.expect(b"# ")
    term.type(b"\x10\x11")
    assert term.wait() == 0
    time.sleep(0.5)
    assert api.inspect("keeps")["State"]["Running"] is True


def test_exec_it_under_a_pty(api: Api) -> None:  # noqa: F811
    r = sampan(api, "run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "8080")
    assert r.returncode == 0, r.stderr
    term = Terminal(api, "exec", "-it", "web", "sh")
    term.expect(b"# ")
    term.type(b"stty size; ps | grep -c httpd\r")
    term.expect(b"30 100\r\n")
    term.type(b"exit 4\r")
    assert term.wait() == 4


def test_start_ai_and_attach(api: Api) -> None:  # noqa: F811
    assert sampan(api, "create", "-it", "--name", "later", "busybox", "sh").returncode == 0
    term = Terminal(api, "start", "-ai", "later")
    term.expect(b"# ")
    term.type(b"echo started-$((1+2))\r")
    term.expect(b"started-3\r\n")
    term.type(b"exit 3\r")
    assert term.wait() == 3
    assert sampan(api, "run", "-d", "--name", "bg", "busybox", "sh", "-c",
                  "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "sampan.cli", "attach", "--no-stdin", "bg"], env=env(api),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"tick-")
        assert sampan(api, "kill", "bg").returncode == 0
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 137
    r = sampan(api, "attach", "bg")
    assert r.returncode == 1 and b"You cannot attach to a stopped container" in r.stderr
