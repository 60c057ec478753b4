"""The runtime's use of the cgroup manager: limits applied and visible, pause/resume through
the freezer, live update, OOM kill (exit 137) compared with runc."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from sampan.runtime import container
from tests.integration.runtime.conftest import PEERS, runtime_cmd

pytestmark = pytest.mark.root


def _resources() -> dict[str, object]:
    return {"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 64}, "memory": {"limit": 64 * 1024 * 1024}}


def _freezer_state(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        path = next(line.strip().split(":", 2)[2] for line in f if ":freezer:" in line)
    with open(f"/sys/fs/cgroup/freezer{path}/freezer.state") as f:
        return f.read().strip()


def test_pause_resume_update(bundle, rt_root, cid):
    cfg = bundle.config("exec sleep 30")
    cfg["linux"]["resources"] = _resources()
    cfg["linux"]["cgroupsPath"] = f"/sampan-rt-test/{cid}"
    bundle.write(cfg)
    with open(os.devnull) as null:
        pid = container.create(rt_root, cid, bundle.path, stdio=(null.fileno(), null.fileno(), null.fileno()))
    try:
        container.start(rt_root, cid)
        assert container.ps(rt_root, cid) == [pid]
        container.pause(rt_root, cid)
        assert container.state(rt_root, cid)["status"] == "paused"
        assert _freezer_state(pid) == "FROZEN"
        container.resume(rt_root, cid)
        assert container.state(rt_root, cid)["status"] == "running"
        assert _freezer_state(pid) == "THAWED"
        container.update(rt_root, cid, {"pids": {"limit": 32}})
        with open(f"/proc/{pid}/cgroup") as f:
            pids_path = next(line.strip().split(":", 2)[2] for line in f if ":pids:" in line)
        with open(f"/sys/fs/cgroup/pids{pids_path}/pids.max") as f:
            assert f.read().strip() == "32"
        container.pause(rt_root, cid)  # delete --force of a paused container thaws and kills it
    finally:
        container.delete(rt_root, cid, force=True)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    assert not os.path.exists(f"/sys/fs/cgroup/pids/sampan-rt-test/{cid}")


@pytest.mark.parametrize("userns", [False, True])
def test_init_joins_its_cgroup_in_every_hierarchy(bundle, rt_root, cid, userns):
    """On v1 the init moves itself in (``tasks`` fds opened by the parent, written by the
    child, also from inside its user namespace); on v2 the parent moves it: either way it is
    a member everywhere the manager drives, and so is a process exec'd into it."""
    from sampan.runtime.cgroups.select import V1_CONTROLLERS

    cfg = bundle.config("exec sleep 30")
    cfg["linux"]["resources"] = _resources()
    cfg["linux"]["cgroupsPath"] = f"/sampan-rt-test/{cid}"
    if userns:
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    bundle.write(cfg)
    with open(os.devnull) as null:
        pid = container.create(rt_root, cid, bundle.path, stdio=(null.fileno(), null.fileno(), null.fileno()))
    try:
        container.start(rt_root, cid)
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.strip().split(":", 2) for line in f]
        driven = [(ctrls, path) for _n, ctrls, path in lines if set(ctrls.split(",")) & set(V1_CONTROLLERS)]
        if not driven:  # v2: the unified line
            driven = [(ctrls, path) for _n, ctrls, path in lines if ctrls == ""]
        assert driven
        for ctrls, path in driven:
            assert path == f"/sampan-rt-test/{cid}", (ctrls, path)
        assert container.ps(rt_root, cid) == [pid]
        with open(os.devnull) as null:
            epid = container.exec_process(rt_root, cid, {"args": ["sleep", "30"], "cwd": "/", "env": ["PATH=/bin"]},
                                          stdio=(null.fileno(), null.fileno(), null.fileno()))
        try:
            with open(f"/proc/{epid}/cgroup") as f:
                exec_lines = [line.strip().split(":", 2) for line in f]
            assert {(c, p) for _n, c, p in exec_lines if (c, p) in driven} == set(driven)
            assert sorted(container.ps(rt_root, cid)) == sorted([pid, epid])
        finally:
            os.kill(epid, 9)
            container.wait_exec(epid)
    finally:
        container.delete(rt_root, cid, force=True)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


@pytest.mark.parametrize("peer", ["runc"])
def test_limits_visible_and_oom_like_peer(bundle, tmp_path, cid, peer):
    if PEERS.get(peer) is None:
        pytest.skip(f"{peer} is not installed")
    script = (
        "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}"
    )
    cfg = bundle.config(script)
    cfg["linux"]["resources"] = _resources()
    cfg["linux"]["resources"]["memory"]["swap"] = 64 * 1024 * 1024
    bundle.write(cfg)
    results = {}
    for name in (peer, "sampan"):
        results[name] = subprocess.run(
            [*runtime_cmd(name, tmp_path / name), "run", "--bundle", str(bundle.path), f"{cid}-{name}"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        time.sleep(0.05)
    ours, theirs = results["sampan"], results[peer]
    assert ours.returncode == theirs.returncode == 137, (ours.stderr, theirs.stderr)
    assert ours.stdout.split()[:2] == theirs.stdout.split()[:2] == ["64", str(64 * 1024 * 1024)]
    assert "survived" not in ours.stdout
