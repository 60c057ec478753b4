"""A leak checker scoped to what a daemon test makes.

The session-wide checker in tests/conftest.py looks at every process on the machine whose
command line mentions "sampan", so it reports (and SIGKILLs) what concurrently running test
sessions own.  This override checks the same kinds of leak, scoped to this test: processes
that descend from this pytest process (the daemons it started, and anything they spawned) and
mounts under the test's tmp dir or the daemons' short socket dirs (/tmp/sp-*).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IS_ROOT, _descendants, _describe, _is_zombie, _mounts


def _mine(prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in _mounts() if m.startswith(prefixes)}


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    if "root" not in request.node.keywords or not IS_ROOT:
        yield
        return
    prefixes = (str(tmp_path), "/tmp/sp-")
    procs_before = _descendants(os.getpid())
    mounts_before = _mine(prefixes)
    yield
    procs = {p for p in _descendants(os.getpid()) - procs_before
             if Path(f"/proc/{p}").exists() and not _is_zombie(p)}
    mounts = _mine(prefixes) - mounts_before
    leaks = {"processes": [_describe(p) for p in sorted(procs)], "mounts": sorted(mounts)}
    leaks = {k: v for k, v in leaks.items() if v}
    for pid in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for mnt in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True)
    if leaks:
        pytest.fail(f"test left behind: {leaks}", pytrace=False)
