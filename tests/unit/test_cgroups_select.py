"""Layout detection and path resolution from mountinfo and /proc/self/cgroup texts."""

from __future__ import annotations

import pytest

from sampan.errors import InvalidConfig, Unavailable
from sampan.runtime.cgroups.select import detect, manager_for_layout, parse_proc_cgroup
from sampan.runtime.cgroups.v1 import V1CgroupManager
from sampan.runtime.cgroups.v2 import V2CgroupManager

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CG = "9:name=systemd:/\n8:pids:/\n4:memory:/api/x\n2:cpuacct:/\n1:cpu:/\n0::/\n"
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
COMOUNT = "32 31 0:29 /outer /cg/cpu\\040acct rw - cgroup cgroup rw,cpu,cpuacct\n"


def test_hybrid_uses_v1_for_bound_controllers() -> None:
    layout = detect(HYBRID, HYBRID_CG)
    assert layout.mode == "hybrid"
    assert sorted(layout.v1) == ["cpu", "cpuacct", "memory", "pids"]
    mgr = manager_for_layout(layout, None, "c1")
    assert isinstance(mgr, V1CgroupManager)
    assert mgr.path == "/sampan/c1"
    assert mgr.dirs["memory"] == "/sys/fs/cgroup/memory/sampan/c1"
    assert "freezer" not in mgr.dirs  # never assume a controller exists


def test_relative_path_is_below_own_cgroup_per_controller() -> None:
    mgr = manager_for_layout(detect(HYBRID, HYBRID_CG), "ctr/c1", "c1")
    assert isinstance(mgr, V1CgroupManager)
    assert mgr.dirs["memory"] == "/sys/fs/cgroup/memory/api/x/ctr/c1"
    assert mgr.dirs["pids"] == "/sys/fs/cgroup/pids/ctr/c1"


def test_pure_v2() -> None:
    layout = detect(V2, "0::/user.slice\n")
    assert layout.mode == "v2"
    mgr = manager_for_layout(layout, "/a/b", "c1")
    assert isinstance(mgr, V2CgroupManager)
    assert mgr.dir == "/sys/fs/cgroup/a/b"


def test_v1_only_with_comounted_controllers_and_root() -> None:
    layout = detect(COMOUNT, "1:cpu,cpuacct:/outer\n")
    assert layout.mode == "v1"
    mgr = manager_for_layout(layout, "/outer/x", "c1")
    assert isinstance(mgr, V1CgroupManager)
    assert mgr.dirs["cpu"] == mgr.dirs["cpuacct"] == "/cg/cpu acct/x"


def test_no_cgroups_mounted() -> None:
    with pytest.raises(Unavailable):
        detect("22 1 0:5 / /proc rw - proc proc rw\n", "")


@pytest.mark.parametrize("path", ["system.slice:docker:abc", "/a/../../etc"])
def test_bad_paths_name_the_field(path: str) -> None:
    with pytest.raises(InvalidConfig, match=r"^linux.cgroupsPath"):
        manager_for_layout(detect(HYBRID, HYBRID_CG), path, "c1")


def test_parse_proc_cgroup() -> None:
    assert parse_proc_cgroup("1:cpu,cpuacct:/a\n0::/b\n") == {
        "cpu": "/a",
        "cpuacct": "/a",
        "": "/b",
    }
