"""The cgroup migration warm-up (sampan.runtime.cgroups.warmup): a side thread that moves this
process to where it already is, so that the container's real move finds the kernel's lock
warm.  It must change nothing and end when told to."""

from __future__ import annotations

import _thread
import os
import time
from pathlib import Path

import pytest

from sampan.runtime.cgroups import warmup

pytestmark = pytest.mark.root


def test_own_procs_file_lists_this_process() -> None:
    path = warmup.own_procs_file()
    assert path is not None and path.endswith("/cgroup.procs")
    assert str(os.getpid()) in Path(path).read_text().split()


def test_warmup_moves_nothing_and_stops() -> None:
    before = Path("/proc/self/cgroup").read_text()
    threads = _thread._count()
    assert warmup.begin(limit=5.0)
    try:
        time.sleep(0.05)
        assert _thread._count() == threads + 1
    finally:
        warmup.stop()
    deadline = time.monotonic() + 2
    while _thread._count() > threads and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _thread._count() == threads
    assert Path("/proc/self/cgroup").read_text() == before


def test_warmup_ends_by_itself_after_its_limit() -> None:
    threads = _thread._count()
    assert warmup.begin(limit=0.05)
    deadline = time.monotonic() + 2
    while _thread._count() > threads and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _thread._count() == threads


def test_only_bundles_that_use_cgroups_start_it(tmp_path: Path) -> None:
    threads = _thread._count()
    assert not warmup.start_for_bundle(str(tmp_path))  # no config.json
    (tmp_path / "config.json").write_text('{"linux": {"namespaces": []}}')
    assert not warmup.start_for_bundle(str(tmp_path))
    assert _thread._count() == threads
    (tmp_path / "config.json").write_text('{"linux": {"resources": {"pids": {"limit": 10}}}}')
    try:
        assert warmup.start_for_bundle(str(tmp_path)) == warmup.needed()
    finally:
        warmup.stop()
    deadline = time.monotonic() + 2
    while _thread._count() > threads and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _thread._count() == threads


def test_needed_only_where_moves_take_the_global_lock() -> None:
    """A host that drives a controller through v1 needs no warm-up (the init moves itself in
    through ``tasks``); a v2-only host does."""
    from sampan.runtime.cgroups.select import V1_CONTROLLERS, detect_host

    v1 = any(ctrl in V1_CONTROLLERS for ctrl in detect_host().v1)
    assert warmup.needed() is not v1
    threads = _thread._count()
    started = warmup.start(limit=0.05)
    assert started is not v1
    deadline = time.monotonic() + 2
    while _thread._count() > threads and time.monotonic() < deadline:
        time.sleep(0.005)
