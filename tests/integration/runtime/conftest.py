"""Fixtures for sampan-runtime tests: a busybox bundle per test, a state root, a CLI runner.

Container ids contain "sampan" (so the leak checker recognises their processes); bundles are
extracted with tar from the session's busybox rootfs into the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sampan.oci.defaults import default_config

PEERS = {"runc": shutil.which("runc"), "crun": shutil.which("crun")}


class Bundle:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rootfs = path / "rootfs"

    def write(self, config: dict[str, Any]) -> Path:
        (self.path / "config.json").write_text(json.dumps(config))
        return self.path

    def config(self, script: str, **kwargs: Any) -> dict[str, Any]:
        """Docker's default config running ``sh -c script`` (ociVersion 1.0.2: crun 1.8 and
        runc 1.1 refuse newer ones)."""
        cfg = default_config(["sh", "-c", script], **kwargs)
        cfg["ociVersion"] = "1.0.2"
        return cfg


@pytest.fixture(scope="session")
def busybox_dir(busybox_rootfs_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("busybox") / "rootfs"
    d.mkdir()
    subprocess.run(["tar", "-C", str(d), "-xf", str(busybox_rootfs_tar)], check=True)
    return d


@pytest.fixture
def bundle(busybox_dir: Path, tmp_path: Path) -> Bundle:
    b = Bundle(tmp_path / "bundle")
    b.path.mkdir()
    subprocess.run(["cp", "-a", str(busybox_dir), str(b.rootfs)], check=True)
    return b


@pytest.fixture
def rt_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "state"
    yield root
    # a failing test must not leave containers running
    from sampan.runtime import container

    for item in container.list_containers(root):
        try:
            container.delete(root, item["id"], force=True)
        except Exception:
            pass


@pytest.fixture
def cid(request: pytest.FixtureRequest) -> str:
    import hashlib

    return "sampan-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]


def runtime_cmd(name: str, root: Path) -> list[str]:
    if name == "sampan":
        return [sys.executable, "-m", "sampan.runtime_main", "--root", str(root)]
    exe = PEERS[name]
    assert exe
    return [exe, "--root", str(root)]


@pytest.fixture
def cli(rt_root: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, timeout: float = 30, runtime: str = "sampan", root: Path | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
        cmd = [*runtime_cmd(runtime, root or rt_root), *args]
        if "create" in args[:3]:
            # the container inherits stdio: capture through files, not pipes it would hold open
            out = rt_root.parent / f"create-{len(args)}.out"
            rt_root.parent.mkdir(exist_ok=True)
            with open(out, "w+") as f:
                proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=timeout)
                f.seek(0)
                text = f.read()
            return subprocess.CompletedProcess(cmd, proc.returncode, text, text)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)

    return run


# ---------------------------------------------------------------- a scoped leak checker
# The session-wide checker in tests/conftest.py looks at every process, mount and cgroup on the
# machine with "sampan" in it, so it reports (and kills) what concurrently running test
# sessions own.  This override checks the same kinds of leak, scoped to what a runtime test can
# make: mounts under its tmp dir, cgroups named after its container id, its own descendants and
# any process whose root directory lies in its tmp dir (a container's init after reparenting).


def _proc_roots_under(prefix: str) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/root").startswith(prefix):
                    out.add(int(entry))
            except OSError:
                continue
    return out


def _scoped_snapshot(prefix: str, tag: str) -> dict[str, set[str]]:
    from tests.conftest import _cgroups, _descendants, _is_zombie, _mounts

    procs = {p for p in _descendants(os.getpid()) | _proc_roots_under(prefix) if not _is_zombie(p)}
    return {
        "mounts": {m for m in _mounts() if m.startswith(prefix)},
        "processes": {str(p) for p in procs},
        "cgroups": {c for c in _cgroups() if tag in c},
    }


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest, tmp_path: Path, cid: str) -> Iterator[None]:
    if "root" not in request.node.keywords or os.geteuid() != 0:
        yield
        return
    prefix = str(tmp_path)
    before = _scoped_snapshot(prefix, cid)
    yield
    time.sleep(0.05)  # let killed processes finish exiting
    after = _scoped_snapshot(prefix, cid)
    leaks = {k: sorted(after[k] - before[k]) for k in after if after[k] - before[k]}
    if leaks:
        from tests.conftest import _cleanup

        _cleanup({**leaks, "processes": leaks.get("processes", [])})
        pytest.fail(f"test left behind: {leaks}", pytrace=False)
