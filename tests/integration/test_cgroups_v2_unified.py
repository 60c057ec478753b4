"""The v2 manager for real on this host's cgroup2 mount: in hybrid mode it carries no
controllers, but device programs, the freezer, cgroup.kill and cpu.stat need none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sampan.errors import InvalidConfig
from sampan.runtime.cgroups import testing
from sampan.runtime.cgroups.select import detect_host
from sampan.runtime.cgroups.v2 import V2CgroupManager

pytestmark = pytest.mark.root

PROBE = """
import os, sys
sys.stdin.buffer.read(1)
for path in ("/dev/null", "/dev/zero", "/dev/full"):
    try:
        os.close(os.open(path, os.O_RDONLY))
        print(path, "ok")
    except PermissionError:
        print(path, "denied")
"""


@pytest.fixture
def v2_cgroup() -> Iterator[V2CgroupManager]:
    layout = detect_host()
    if layout.unified is None:
        pytest.skip("no cgroup2 mount")
    mountpoint = layout.unified.mountpoint
    name = f"sampan-devtest-{os.getpid()}"
    path = os.path.join(mountpoint, name)
    os.mkdir(path)  # no create(): it would enable controllers in the host's root cgroup
    try:
        yield V2CgroupManager(f"/{name}", path, mountpoint=mountpoint)
    finally:
        os.rmdir(path)


def test_device_rules_enforced(v2_cgroup: V2CgroupManager) -> None:
    v2_cgroup.set(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "w"},
            ]
        }
    )
    p = subprocess.Popen(
        [sys.executable, "-S", "-c", PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    v2_cgroup.add(p.pid)
    out, _ = p.communicate(b"x", timeout=30)
    assert out.decode().split("\n")[:3] == ["/dev/null ok", "/dev/zero denied", "/dev/full denied"]
    # a new rule set replaces the old program
    v2_cgroup.set({"devices": [{"allow": True, "access": "rwm"}]})
    p = subprocess.Popen(
        [sys.executable, "-S", "-c", PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    v2_cgroup.add(p.pid)
    out, _ = p.communicate(b"x", timeout=30)
    assert "denied" not in out.decode()


def test_missing_cgroup_names_the_field(v2_cgroup: V2CgroupManager) -> None:
    gone = V2CgroupManager("/x", v2_cgroup.dir + "-missing", mountpoint=v2_cgroup.mountpoint)
    with pytest.raises(InvalidConfig, match=r"^linux.resources.devices: cgroup .* does not exist"):
        gone.set({"devices": [{"allow": False, "access": "rwm"}]})


def test_freeze_thaw_kill_pids_and_cpu_stats(v2_cgroup: V2CgroupManager) -> None:
    """cgroup.freeze, cgroup.kill, cgroup.procs and cpu.stat are core v2 files: they work
    even on a cgroup2 mount without controllers."""
    busy = (
        "import time\nt = time.time()\nwhile time.time() - t < 0.2: pass\nimport os; os.read(0, 1)"
    )
    p = subprocess.Popen([sys.executable, "-S", "-c", busy], stdin=subprocess.PIPE)
    try:
        v2_cgroup.add(p.pid)
        assert v2_cgroup.pids() == [p.pid]
        v2_cgroup.freeze()
        assert v2_cgroup.frozen()
        v2_cgroup.thaw()
        assert not v2_cgroup.frozen()
        time.sleep(0.3)
        s = v2_cgroup.stats()
        assert s.cpu_total_ns > 50_000_000 and s.cpu_user_ns > 0
        v2_cgroup.kill_all(signal.SIGKILL)
        assert p.wait(timeout=5) == -signal.SIGKILL
        deadline = time.monotonic() + 2
        while v2_cgroup.pids() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert v2_cgroup.pids() == []
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("check", testing.USE_CHECKS, ids=testing.check_id)
def test_conformance(check: testing.Check, v2_cgroup: V2CgroupManager) -> None:
    check(v2_cgroup)
