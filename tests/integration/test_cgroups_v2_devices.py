"""The v2 device filter for real: a BPF program attached to a directory of this host's
cgroup2 mount (in hybrid mode it carries no controllers, but device programs need none)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from sampan.errors import InvalidConfig
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
