"""The v2 manager against a fake unified hierarchy in tmp (the host's controllers are on v1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sampan.errors import InvalidConfig
from sampan.runtime.cgroups.v1 import V1CgroupManager
from sampan.runtime.cgroups.v2 import (
    V2CgroupManager,
    blkio_to_io_weight,
    shares_to_weight,
    swap_to_v2,
)

V2_FILES = [
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.events",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "cpu.weight",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
    "io.max",
    "memory.high",
]


def make_tree(tmp_path: Path) -> V2CgroupManager:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (root / "cgroup.subtree_control").write_text("")
    mgr = V2CgroupManager(
        "/sampan/c1", str(root / "sampan" / "c1"), mountpoint=str(root), removable_parents=1
    )
    return mgr


def test_create_enables_controllers_in_ancestors(tmp_path: Path) -> None:
    mgr = make_tree(tmp_path)
    mgr.create()
    assert os.path.isdir(mgr.dir)
    assert (
        tmp_path / "cg" / "cgroup.subtree_control"
    ).read_text() == "+cpuset +cpu +io +memory +pids +hugetlb"
    mgr.create()  # idempotent


def test_set_writes_v2_files(tmp_path: Path) -> None:
    mgr = make_tree(tmp_path)
    mgr.create()
    for name in V2_FILES:
        Path(mgr.dir, name).write_text("")
    mgr.set(
        {
            "memory": {"limit": 100 << 20, "swap": 150 << 20, "reservation": 50 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": -1},
            "blockIO": {
                "weight": 500,
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}],
            },
            "unified": {"memory.high": "200000000"},
        }
    )
    read = lambda name: Path(mgr.dir, name).read_text()  # noqa: E731
    assert read("memory.max") == str(100 << 20)
    assert read("memory.swap.max") == str(50 << 20)
    assert read("memory.low") == str(50 << 20)
    assert read("cpu.weight") == str(shares_to_weight(1024)) == "39"
    assert read("cpu.max") == "50000 100000"
    assert read("pids.max") == "max"
    assert read("io.weight") == str(blkio_to_io_weight(500))
    assert read("io.max") == "8:0 wiops=10"
    assert read("memory.high") == "200000000"


def test_missing_file_names_field(tmp_path: Path) -> None:
    mgr = make_tree(tmp_path)
    mgr.create()
    with pytest.raises(InvalidConfig, match=r"^linux.resources.pids.limit: not supported"):
        mgr.set({"pids": {"limit": 5}})
    with pytest.raises(InvalidConfig, match=r"^linux.resources.memory.swappiness"):
        mgr.set({"memory": {"swappiness": 10}})


def test_stats_parse(tmp_path: Path) -> None:
    mgr = make_tree(tmp_path)
    mgr.create()
    files = {
        "memory.current": "1000\n",
        "memory.max": "max\n",
        "memory.peak": "2000\n",
        "memory.stat": "anon 10\nfile 20\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n",
        "cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 4\nthrottled_usec 9\n",
        "pids.current": "3\n",
        "pids.max": "42\n",
        "io.stat": "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n",
    }
    for name, text in files.items():
        Path(mgr.dir, name).write_text(text)
    s = mgr.stats()
    assert (s.memory_usage, s.memory_limit, s.memory_max_usage) == (1000, 0, 2000)
    assert s.memory_stat == {"anon": 10, "file": 20}
    assert (s.oom_events, s.oom_kill) == (2, 1)
    assert (s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns) == (5000, 3000, 2000)
    assert (s.periods, s.throttled_periods, s.throttled_time_ns) == (7, 4, 9000)
    assert (s.pids_current, s.pids_limit) == (3, 42)
    assert s.blkio == [(8, 0, "Read", 100), (8, 0, "Write", 200), (8, 0, "Discard", 0)]


def test_freeze_reads_events(tmp_path: Path) -> None:
    mgr = make_tree(tmp_path)
    mgr.create()
    Path(mgr.dir, "cgroup.events").write_text("populated 1\nfrozen 1\n")
    Path(mgr.dir, "cgroup.freeze").write_text("")
    mgr.freeze()
    assert Path(mgr.dir, "cgroup.freeze").read_text() == "1"
    assert mgr.frozen()


def test_destroy_removes_default_parent(tmp_path: Path) -> None:
    mgr = make_tree(tmp_path)
    mgr.create()
    mgr.destroy()
    mgr.destroy()  # idempotent
    assert not (tmp_path / "cg" / "sampan").exists()


def test_conversions() -> None:
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    assert blkio_to_io_weight(10) == 1 and blkio_to_io_weight(1000) == 10000
    assert swap_to_v2(-1, 100) == -1 and swap_to_v2(0, 100) is None and swap_to_v2(300, 100) == 200


def test_v1_fake_tree_memory_order_and_devices(tmp_path: Path) -> None:
    dirs = {c: str(tmp_path / c / "sampan" / "c1") for c in ("memory", "devices", "cpuset")}
    mgr = V1CgroupManager("/sampan/c1", dirs, removable_parents=1)
    for c in dirs:
        (tmp_path / c).mkdir()
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    mgr.create()
    for name in (
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "devices.allow",
        "devices.deny",
    ):
        d = dirs["devices"] if name.startswith("devices") else dirs["memory"]
        Path(d, name).write_text("9223372036854771712\n")
    mgr.set(
        {
            "memory": {"limit": 1 << 20, "swap": 2 << 20},
            "devices": [{"allow": False, "access": "rwm"}],
        }
    )
    assert Path(dirs["memory"], "memory.limit_in_bytes").read_text() == str(1 << 20)
    assert Path(dirs["memory"], "memory.memsw.limit_in_bytes").read_text() == str(2 << 20)
    assert Path(dirs["devices"], "devices.deny").read_text() == "a *:* rwm"
    with pytest.raises(InvalidConfig, match=r"^linux.resources.pids.limit: the pids controller"):
        mgr.set({"pids": {"limit": 5}})
