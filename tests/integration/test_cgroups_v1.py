"""cgroup v1 for real (this host is hybrid: memory, cpu, pids... are on v1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.errors import InvalidConfig
from sampan.runtime.cgroups import CgroupManager, new_manager, testing
from sampan.runtime.cgroups.select import detect_host
from sampan.runtime.cgroups.v1 import V1CgroupManager

pytestmark = pytest.mark.root

if detect_host().mode == "v2":  # pragma: no cover - other machines
    pytest.skip("host runs cgroup v2 only", allow_module_level=True)


@pytest.fixture
def mgr(names: object) -> Iterator[CgroupManager]:
    m = new_manager(None, f"sampan-test-{os.getpid()}-{id(names):x}")
    m.create()
    try:
        yield m
    finally:
        m.kill_all(signal.SIGKILL)
        m.destroy()


def gated(code: str) -> subprocess.Popen[bytes]:
    """A python child that runs ``code`` once a byte arrives on stdin (after it joined)."""
    return subprocess.Popen(
        [sys.executable, "-S", "-c", f"import os, sys\nsys.stdin.buffer.read(1)\n{code}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def release(p: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    out, _ = p.communicate(b"x", timeout=30)
    return p.returncode, out


def test_layout_is_v1_manager(mgr: CgroupManager) -> None:
    assert isinstance(mgr, V1CgroupManager)
    assert mgr.path.startswith("/sampan/")
    assert os.path.isdir(mgr.dirs["memory"])


def test_memory_limit_oom_kills_and_counts(mgr: CgroupManager) -> None:
    mgr.set({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    p = gated("b = b'x' * (96 << 20)\nprint('survived')")
    mgr.add(p.pid)
    code, out = release(p)
    assert code == -signal.SIGKILL, out
    s = mgr.stats()
    assert s.oom_kill >= 1 and s.oom_events >= 1
    assert s.memory_limit == 32 << 20
    assert s.memory_max_usage > 16 << 20


def test_pids_limit_enforced(mgr: CgroupManager) -> None:
    mgr.set({"pids": {"limit": 4}})
    code = (
        "import time\nn = 0\n"
        "for _ in range(10):\n"
        "    try:\n        pid = os.fork()\n    except BlockingIOError:\n        break\n"
        "    if pid == 0:\n        time.sleep(0.5); os._exit(0)\n    n += 1\n"
        "print(n, flush=True)\nos.kill(0, 0)\n"
    )
    p = gated(code)
    mgr.add(p.pid)
    _, out = release(p)
    assert int(out.split()[0]) == 3  # the parent plus 3 children fill the limit of 4
    assert mgr.stats().pids_limit == 4


def test_cpu_shares_quota_visible_and_stats(mgr: CgroupManager) -> None:
    assert isinstance(mgr, V1CgroupManager)
    mgr.set({"cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0"}})
    assert Path(mgr.dirs["cpu"], "cpu.shares").read_text().strip() == "512"
    assert Path(mgr.dirs["cpu"], "cpu.cfs_quota_us").read_text().strip() == "20000"
    p = gated("import time\nt = time.time()\nwhile time.time() - t < 0.3: pass")
    mgr.add(p.pid)
    with open(f"/proc/{p.pid}/cgroup") as f:
        assert f"cpu:{mgr.path}\n" in f.read()
    assert mgr.pids() == [p.pid]
    assert release(p)[0] == 0
    s = mgr.stats()
    assert 30_000_000 < s.cpu_total_ns < 200_000_000  # 0.3 s busy, capped near 20%
    assert s.cpu_user_ns > 0 and len(s.cpu_percpu_ns) == os.cpu_count()
    assert s.throttled_periods > 0 and s.throttled_time_ns > 0  # 20% of one cpu for a busy loop


def test_freeze_thaw_and_kill_all(mgr: CgroupManager) -> None:
    p = subprocess.Popen(["sleep", "30"])
    try:
        mgr.add(p.pid)
        mgr.freeze()
        assert mgr.frozen()
        with open(f"/proc/{p.pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] in ("D", "S")
        mgr.thaw()
        assert not mgr.frozen()
        mgr.freeze()
        mgr.kill_all(signal.SIGKILL)  # a frozen group is thawed so the kill lands
        assert p.wait(timeout=5) == -signal.SIGKILL
    finally:
        p.kill()
        p.wait()


def test_devices_rules_and_bad_values(mgr: CgroupManager) -> None:
    assert isinstance(mgr, V1CgroupManager)
    mgr.set(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            ]
        }
    )
    assert Path(mgr.dirs["devices"], "devices.list").read_text().split("\n")[0] == "c 1:3 rwm"
    with pytest.raises(InvalidConfig, match=r"^linux.resources.cpu.cpus: "):
        mgr.set({"cpu": {"cpus": "999"}})
    with pytest.raises(InvalidConfig, match=r"^linux.resources.unified"):
        mgr.set({"unified": {"memory.high": "1"}})


def test_destroy_is_idempotent_and_removes_default_parent() -> None:
    m = new_manager(None, f"sampan-destroy-{os.getpid()}")
    assert isinstance(m, V1CgroupManager)
    m.create()
    m.create()
    m.destroy()
    m.destroy()
    assert not any(os.path.exists(d) for d in m.dirs.values())


@pytest.mark.parametrize("check", testing.CHECKS, ids=testing.check_id)
def test_conformance(check: testing.Check, mgr: CgroupManager) -> None:
    check(mgr)
