"""The conformance suite every CgroupManager runs on a real kernel (as storage/testing.py
does for snapshotters).

A check is ``check(mgr)`` on a manager whose cgroup is created and empty; it may start
processes (it kills them) and must leave the cgroup empty.  A test module runs them for each
implementation it can get on the machine::

    @pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
    def test_v1(check, mgr):
        check(mgr)

``USE_CHECKS`` leave out create/destroy, for a cgroup the test made itself (on a hybrid host,
a v2 create() would enable controllers in the host's root cgroup).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sampan.runtime.cgroups.manager import CgroupManager, CgroupStats

Check = Callable[[CgroupManager], None]


@contextmanager
def member(mgr: CgroupManager) -> Iterator[subprocess.Popen[bytes]]:
    """A process in the cgroup for the duration (a shell reading its stdin)."""
    p = subprocess.Popen(["/bin/sh", "-c", "read x"], stdin=subprocess.PIPE)
    try:
        mgr.add(p.pid)
        yield p
    finally:
        p.kill()
        p.wait()
        _wait_empty(mgr)


def _wait_empty(mgr: CgroupManager, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while mgr.pids() and time.monotonic() < deadline:
        time.sleep(0.005)


def check_create_is_idempotent(mgr: CgroupManager) -> None:
    mgr.create()
    mgr.create()
    assert mgr.pids() == []


def check_add_and_pids(mgr: CgroupManager) -> None:
    with member(mgr) as p:
        assert mgr.pids() == [p.pid]
        with open(f"/proc/{p.pid}/cgroup") as f:
            assert mgr.path in f.read()
    assert mgr.pids() == []


def check_freeze_thaw(mgr: CgroupManager) -> None:
    with member(mgr):
        assert not mgr.frozen()
        mgr.freeze()
        assert mgr.frozen()
        mgr.freeze()  # again: no change
        mgr.thaw()
        assert not mgr.frozen()


def check_kill_all_reaches_a_frozen_group(mgr: CgroupManager) -> None:
    with member(mgr) as p:
        mgr.freeze()
        mgr.kill_all(signal.SIGKILL)
        assert p.wait(timeout=5) == -signal.SIGKILL
        if mgr.frozen():
            mgr.thaw()


def check_stats_are_uniform(mgr: CgroupManager) -> None:
    busy = "import time\nt = time.time()\nwhile time.time() - t < 0.05: pass\n"
    p = subprocess.Popen(
        [sys.executable, "-S", "-c", f"import os\nos.read(0, 1)\n{busy}"], stdin=subprocess.PIPE
    )
    try:
        mgr.add(p.pid)
        p.communicate(b"x", timeout=10)
    finally:
        p.kill()
        p.wait()
    _wait_empty(mgr)
    s = mgr.stats()
    assert isinstance(s, CgroupStats)
    for name in (
        "memory_usage",
        "memory_limit",
        "memory_max_usage",
        "oom_events",
        "oom_kill",
        "cpu_total_ns",
        "cpu_user_ns",
        "cpu_system_ns",
        "throttled_periods",
        "throttled_time_ns",
        "periods",
        "pids_current",
        "pids_limit",
    ):
        value = getattr(s, name)
        assert isinstance(value, int) and value >= 0, (name, value)
    assert s.cpu_total_ns >= 10_000_000  # the 50 ms busy loop was accounted
    assert all(isinstance(v, int) for v in s.memory_stat.values())
    assert all(len(row) == 4 for row in s.blkio)


def check_destroy_is_idempotent(mgr: CgroupManager) -> None:
    mgr.destroy()
    mgr.destroy()
    mgr.create()  # the fixture destroys again


#: Checks that only use an existing cgroup (no create/destroy).
USE_CHECKS: list[Check] = [
    check_add_and_pids,
    check_freeze_thaw,
    check_kill_all_reaches_a_frozen_group,
    check_stats_are_uniform,
]
CHECKS: list[Check] = [check_create_is_idempotent, *USE_CHECKS, check_destroy_is_idempotent]


def check_id(check: Check) -> str:
    return check.__name__.removeprefix("check_")
