"""Container scenarios: ``run --rm busybox true``, ``run -d`` + ``rm -f`` of 50 containers, and the
memory each running container costs.

* ``run-rm``: CLI start to exit of ``run --rm --network none busybox true`` (sampan's default
  network is none until bridge networking lands; the peers are told ``--network none``), with
  the ``sampan`` CLI and with the docker CLI against sampand, vs docker and podman.
* ``run-d-rm-50``: ``run -d`` of 50 ``sleep`` containers one after another, then one ``rm -f`` of
  all of them; the whole batch is timed.
* ``mem-per-container``: 50 running ``sleep`` containers; the daemon's RSS growth divided by 50
  plus the mean PSS of the per-container monitors (sampan's shims, docker's
  containerd-shim-runc-v2, podman's conmon), read from ``/proc/PID/smaps_rollup`` (smem's
  source), in MB.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.engines import docker_available, docker_env
from bench.scenarios import CACHE, PEERS, REPO, Context, Scenario, _run, _timed

N = 50


@dataclass
class MemoryScenario(Scenario):
    """Iterations return MB, not seconds (the runner prints a scenario's ``unit``)."""

    unit: str = "MB"


def _ensure_busybox(ctx: Context) -> None:
    if subprocess.run(ctx.sampand.cli("image", "inspect", "busybox"), capture_output=True).returncode == 0:
        return
    rootfs = CACHE / "busybox-rootfs.tar"
    if not rootfs.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        _run(["bash", str(REPO / "scripts" / "mkimage-busybox.sh"), str(rootfs)])
    _run(ctx.sampand.cli("import", "-c", 'CMD ["sh"]', str(rootfs), "busybox:latest"))


def _docker_on_sampand(ctx: Context) -> dict[str, str]:
    config = Path(tempfile.mkdtemp(prefix="sampan-bench-docker-config-", dir="/var/tmp"))
    atexit.register(shutil.rmtree, config, True)
    return {**ctx.sampand.env, "DOCKER_CONFIG": str(config)}


def podman_env() -> dict[str, str] | None:
    """podman with the peers' containers.conf (lower ulimits: no CAP_SYS_RESOURCE here), when
    podman and its busybox image are there."""
    if not shutil.which("podman"):
        return None
    env = dict(os.environ)
    conf = PEERS / "podman" / "containers.conf"
    if conf.exists():
        env["CONTAINERS_CONF"] = str(conf)
    if subprocess.run(["podman", "image", "exists", "busybox"], env=env, capture_output=True).returncode != 0:
        return None
    return env


def podman() -> list[str]:
    """podman, with runc when crun cannot run here (crun refuses cgroup hybrid mode unless the
    peers' setup.sh mounted hugetlb as a v1 hierarchy)."""
    return ["podman"] if os.path.ismount("/sys/fs/cgroup/hugetlb") else ["podman", "--runtime", "runc"]


def run_rm(ctx: Context) -> Scenario:
    _ensure_busybox(ctx)
    s = Scenario("run-rm", "`run --rm --network none busybox true`, CLI start to exit")
    s.variants["sampan"] = _timed(ctx.sampand.cli("run", "--rm", "--network", "none", "busybox", "true"))
    if shutil.which("docker"):
        s.variants["docker-cli-on-sampand"] = _timed(
            ["docker", "run", "--rm", "--network", "none", "busybox", "true"], _docker_on_sampand(ctx))
    if ctx.peers and docker_available():
        s.variants["docker"] = _timed(["docker", "run", "--rm", "--network", "none", "busybox", "true"], docker_env())
    penv = podman_env() if ctx.peers else None
    if penv is not None:
        s.variants["podman"] = _timed([*podman(), "run", "--rm", "--network", "none", "busybox", "true"], penv)
    return s


def _batch(run: Callable[[int], list[str]], rm: Callable[[list[str]], list[str]],
           env: dict[str, str] | None = None) -> Callable[[], float]:
    def once() -> float:
        t0 = time.perf_counter()
        ids = []
        for i in range(N):
            out = subprocess.run(run(i), env=env, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"run -d: {out.stderr[-300:]}")
            ids.append(out.stdout.strip())
        _run(rm(ids), env)
        return time.perf_counter() - t0

    return once


def run_d_rm_50(ctx: Context) -> Scenario:
    _ensure_busybox(ctx)
    s = Scenario("run-d-rm-50", f"`run -d` of {N} `sleep` containers, then `rm -f` of all of them")
    s.variants["sampan"] = _batch(lambda i: ctx.sampand.cli("run", "-d", "--network", "none", "busybox", "sleep", "300"),
                                  lambda ids: ctx.sampand.cli("rm", "-f", *ids))
    if ctx.peers and docker_available():
        s.variants["docker"] = _batch(lambda i: ["docker", "run", "-d", "--network", "none", "busybox", "sleep", "300"],
                                      lambda ids: ["docker", "rm", "-f", *ids], docker_env())
    penv = podman_env() if ctx.peers else None
    if penv is not None:
        s.variants["podman"] = _batch(lambda i: [*podman(), "run", "-d", "--network", "none", "busybox", "sleep", "300"],
                                      lambda ids: [*podman(), "rm", "-f", "-t", "0", *ids], penv)
    return s


def _kb(pid: int, field: str) -> int:
    """``Rss``/``Pss`` of a process in kB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _pids_named(name: str) -> list[int]:
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _memory(start: list[str], pid_of: list[str], cleanup: list[str], daemon_pids: Callable[[], list[int]],
            monitor_of: Callable[[int], int], env: dict[str, str] | None = None) -> Callable[[], float]:
    """Daemon RSS growth / N + mean monitor PSS, in MB."""

    def once() -> float:
        before = sum(_kb(p, "Rss") for p in daemon_pids())
        ids = []
        try:
            for _ in range(N):
                out = subprocess.run(start, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"run -d: {out.stderr[-300:]}")
                ids.append(out.stdout.strip())
            time.sleep(1.0)
            after = sum(_kb(p, "Rss") for p in daemon_pids())
            listed = subprocess.run([*pid_of, *ids], env=env, capture_output=True, text=True).stdout.split()
            monitors = {monitor_of(int(p)) for p in listed if p.isdigit() and int(p) > 0}
            pss = [_kb(m, "Pss") for m in monitors if m]
            per = (after - before) / N + (sum(pss) / len(pss) if pss else 0.0)
            return per / 1000.0  # kB -> MB
        finally:
            if ids:
                subprocess.run([*cleanup, *ids], env=env, capture_output=True)

    return once


def mem_per_container(ctx: Context) -> Scenario:
    _ensure_busybox(ctx)
    s = MemoryScenario("mem-per-container", f"memory per running `sleep` container over {N}: daemon RSS growth / {N} "
                       "+ monitor PSS (MB)")
    daemon_pid = ctx.sampand.proc.pid if ctx.sampand.proc else 0
    fmt = ["--format", "{{.State.Pid}}"]
    s.variants["sampan"] = _memory(
        ctx.sampand.cli("run", "-d", "--network", "none", "busybox", "sleep", "600"),
        [*ctx.sampand.cli("inspect", *fmt)], ctx.sampand.cli("rm", "-f"),
        lambda: [daemon_pid], _ppid,
    )
    if ctx.peers and docker_available():
        s.variants["docker"] = _memory(
            ["docker", "run", "-d", "--network", "none", "busybox", "sleep", "600"],
            ["docker", "inspect", *fmt], ["docker", "rm", "-f"],
            lambda: _pids_named("dockerd") + _pids_named("containerd"), _ppid, docker_env(),
        )
    penv = podman_env() if ctx.peers else None
    if penv is not None:
        s.variants["podman"] = _memory(
            [*podman(), "run", "-d", "--network", "none", "busybox", "sleep", "600"],
            [*podman(), "inspect", *fmt], [*podman(), "rm", "-f", "-t", "0"], lambda: [], _ppid, penv,
        )
    return s


SCENARIOS: dict[str, Callable[[Context], Scenario]] = {
    "run-rm": run_rm,
    "run-d-rm-50": run_d_rm_50,
    "mem-per-container": mem_per_container,
}
