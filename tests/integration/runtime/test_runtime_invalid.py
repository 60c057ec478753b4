"""An invalid config fails create with one line naming the field, runc's exit code (1), and
leaves no state directory, cgroup, mount or process behind (the scoped leak checker checks
mounts, processes and cgroups; the test checks the state directory)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.integration.runtime.conftest import PEERS

pytestmark = pytest.mark.root


def _unknown_ns(cfg: dict[str, Any]) -> None:
    cfg["linux"]["namespaces"].append({"type": "foo"})


def _bad_mount_option(cfg: dict[str, Any]) -> None:
    cfg["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "bogusopt=1"]})


def _missing_rootfs(cfg: dict[str, Any]) -> None:
    cfg["root"]["path"] = "no-such-rootfs"


def _bad_seccomp_action(cfg: dict[str, Any]) -> None:
    cfg["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_EXPLODE"


def _missing_binary(cfg: dict[str, Any]) -> None:
    cfg["process"]["args"] = ["no-such-binary"]


CASES = [
    (_unknown_ns, 'linux.namespaces[6].type: unknown namespace "foo"'),
    (_bad_mount_option, "mounts[7].options"),
    (_missing_rootfs, "root.path"),
    (_bad_seccomp_action, "linux.seccomp.syscalls[0].action"),
    (_missing_binary, 'exec: "no-such-binary": executable file not found in $PATH'),
]


@pytest.mark.parametrize(("mutate", "expected"), CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_invalid_config(bundle, cli, cid, rt_root, mutate, expected):
    cfg = bundle.config("true")
    cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 50}}
    cfg["linux"]["cgroupsPath"] = f"/sampan-test/{cid}"
    mutate(cfg)
    bundle.write(cfg)
    r = cli("create", "--bundle", str(bundle.path), cid)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert expected in lines[0]
    assert not (rt_root / cid).exists()
    assert os.listdir(rt_root) in ([], [".seccomp-cache"]) if rt_root.exists() else True


@pytest.mark.skipif(PEERS["runc"] is None, reason="runc is not installed")
def test_exit_code_like_runc(bundle, cli, cid, tmp_path):
    cfg = bundle.config("true")
    _missing_binary(cfg)
    bundle.write(cfg)
    ours = cli("run", "--bundle", str(bundle.path), cid)
    theirs = cli("run", "--bundle", str(bundle.path), cid + "-runc", runtime="runc", root=tmp_path / "runc")
    assert ours.returncode == theirs.returncode
