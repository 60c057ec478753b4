"""The fork server's rehearsal of a shim's life: it goes through, or fails, without leaving
anything behind (files, children, stdio, signal dispositions)."""

from __future__ import annotations

import glob
import os
import signal

import pytest

from sampan.runtime import shimrehearsal

pytestmark = pytest.mark.root


def _in_child(prepare: str = "") -> tuple[int, int]:
    """Run the rehearsal in a forked child (it changes process-wide state while it runs);
    the child's exit code says whether it went through and left its process as it was."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 99
        try:
            if prepare == "broken":
                shimrehearsal._RUNTIME = "#!/bin/sh\nexit 1\n"
            elif prepare == "hangs":
                shimrehearsal._RUNTIME = '#!/bin/sh\n[ "$5" = create ] && sleep 60\n'
                shimrehearsal._TIMEOUT = 1
            fds = sorted(os.listdir("/proc/self/fd"))
            before = [os.fstat(fd).st_ino for fd in (0, 1, 2)]
            done = shimrehearsal.rehearse()
            same = (
                sorted(os.listdir("/proc/self/fd")) == fds
                and [os.fstat(fd).st_ino for fd in (0, 1, 2)] == before
                and signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
                and _no_children()
            )
            code = (0 if done else 1) if same else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), pid


def _no_children() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _leftovers(pid: int) -> list[str]:
    return glob.glob(f"/tmp/.shim-rehearsal-{pid}-*")


def test_rehearsal_goes_through_and_leaves_nothing() -> None:
    code, pid = _in_child()
    assert code == 0
    assert _leftovers(pid) == []


def test_stale_rehearsal_dirs_are_removed() -> None:
    stale = f"{shimrehearsal._BASE}999999-1"
    os.mkdir(stale)
    with open(f"{stale}/state.json", "w") as f:
        f.write("{}")
    os.utime(stale, (0, 0))
    fresh = f"{shimrehearsal._BASE}999999-2"
    os.mkdir(fresh)
    try:
        assert _in_child()[0] == 0
        assert not os.path.exists(stale) and os.path.isdir(fresh)
    finally:
        for path in (stale, fresh):
            if os.path.isdir(path):
                for name in os.listdir(path):
                    os.unlink(f"{path}/{name}")
                os.rmdir(path)


@pytest.mark.parametrize("how", ["broken", "hangs"])
def test_failed_rehearsal_leaves_nothing(how: str) -> None:
    code, pid = _in_child(how)
    assert code == 1
    assert _leftovers(pid) == []
