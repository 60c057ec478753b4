"""OCI runtime and shim scenarios: ``runtime-run`` (start latency) and ``shim-memory``.

* ``runtime-run``: ``run`` of ``/bin/true`` on one busybox bundle (Docker's default config plus
  cgroup resources: memory, pids and cpu limits, so the cgroup path of the runtime is timed),
  process start to exit, under sampan-runtime through its fast launcher (the script itself:
  ``#!/usr/bin/python3 -IS``), runc, and with --peers crun when it can run here (crun refuses
  a hybrid cgroup host unless ../shared/peers/setup.sh mounted hugetlb as v1).
* ``shim-memory``: 10 running ``sleep`` containers, each behind its own monitor; RSS and PSS per
  monitor from Debian's ``smem`` (KiB / 1024, printed as MB): sampan's shims (forked from a
  fork server, the daemon's way, running sampan's runtime in-process), and with --peers
  docker's ``containerd-shim-runc-v2`` (containers started on the peers' dockerd) and podman's
  ``conmon``.  Rows named "<engine> RSS" compare with "sampan RSS"; the others are PSS.

The busybox bundle's rootfs is unpacked once into ``$SAMPAN_TEST_CACHE/runtime-bench``.  Every
container, cgroup and fork server a scenario starts is removed when its iteration ends.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.containers import _ppid, podman, podman_env
from bench.engines import docker_available, docker_env
from bench.scenarios import CACHE, REPO, Context, Scenario, _run

N_SHIMS = 10
CGROUP_PARENT = "rtbench"  # no "sampan" in it: test sessions' leak checkers remove those
MEM_LIMIT = 256 << 20


@dataclass
class MeasuredScenario(Scenario):
    """A scenario whose iterations return a value in ``unit`` (not seconds)."""

    unit: str = "MB"


def _rootfs() -> Path:
    """The busybox rootfs, unpacked once into the cache."""
    base = CACHE / "runtime-bench"
    rootfs = base / "rootfs"
    if not (base / ".complete").exists():
        tar = CACHE / "busybox-rootfs.tar"
        if not tar.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            _run(["bash", str(REPO / "scripts" / "mkimage-busybox.sh"), str(tar)])
        shutil.rmtree(base, ignore_errors=True)
        rootfs.mkdir(parents=True)
        _run(["tar", "-C", str(rootfs), "-xf", str(tar)])
        (base / ".complete").touch()
    return rootfs


def _config(args: list[str], rootfs: Path, cgroup: str, *, readonly: bool) -> dict[str, Any]:
    from sampan.oci.defaults import default_config

    cfg = default_config(args, rootfs=str(rootfs), readonly_root=readonly)
    cfg["ociVersion"] = "1.0.2"  # runc 1.1 and crun 1.8 refuse newer ones
    cfg["linux"]["cgroupsPath"] = cgroup
    cfg["linux"]["resources"] = {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": MEM_LIMIT},
        "pids": {"limit": 1024},
        "cpu": {"shares": 1024},
    }
    return cfg


def _remove_cgroup_parent() -> None:
    """runc and crun leave the (empty) parent cgroup behind."""
    base = Path("/sys/fs/cgroup")
    for top in [base, *base.iterdir()] if base.is_dir() else []:
        with contextlib.suppress(OSError):
            (top / CGROUP_PARENT).rmdir()


def _crun_works(root: Path, bundle: Path) -> bool:
    crun = shutil.which("crun")
    if crun is None:
        return False
    probe = subprocess.run([crun, "--root", str(root), "run", "-b", str(bundle), "rtbench-probe"],
                           capture_output=True, stdin=subprocess.DEVNULL)
    subprocess.run([crun, "--root", str(root), "delete", "-f", "rtbench-probe"], capture_output=True)
    return probe.returncode == 0


def runtime_run(ctx: Context) -> Scenario:
    rootfs = _rootfs()
    work = Path(tempfile.mkdtemp(prefix="rtbench-", dir="/var/tmp"))
    atexit.register(shutil.rmtree, work, True)
    bundle = work / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(
        _config(["/bin/true"], rootfs, f"/{CGROUP_PARENT}/run", readonly=False)))
    # the launcher is a link named "rt" (no "sampan" in the command line, as bench_runtime.sh)
    launcher = work / "rt"
    launcher.symlink_to(REPO / "sampan" / "runtime_main.py")
    s = Scenario("runtime-run", "OCI runtime `run` of /bin/true on a busybox bundle with cgroup limits")

    def timed(cmd: list[str]) -> Callable[[], float]:
        def once() -> float:
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
            elapsed = time.perf_counter() - t0
            _remove_cgroup_parent()
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")
            return elapsed

        return once

    def run(exe: str, name: str) -> list[str]:
        return [exe, "--root", str(work / f"state-{name}"), "run", "-b", str(bundle), f"rtbench-{name}"]

    s.variants["sampan"] = timed(run(str(launcher), "sampan"))
    runc = shutil.which("runc")
    if runc:
        s.variants["runc"] = timed(run(runc, "runc"))
    if ctx.peers and _crun_works(work / "state-probe", bundle):
        s.variants["crun"] = timed(run(shutil.which("crun") or "crun", "crun"))
    _remove_cgroup_parent()
    return s


# ---------------------------------------------------------------- memory per monitor


def smem_kib(pids: list[int]) -> dict[int, tuple[int, int]]:
    """``{pid: (pss, rss)}`` in KiB from Debian's smem, for those of ``pids`` it lists."""
    out = subprocess.run(["smem", "-H", "-c", "pid pss rss"], capture_output=True, text=True, check=True).stdout
    wanted = set(pids)
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit() and int(parts[0]) in wanted:
            rows[int(parts[0])] = (int(parts[1]), int(parts[2]))
    return rows


#: N running containers for the duration of a ``with``: their monitors' pids
Running = Callable[[], contextlib.AbstractContextManager[list[int]]]


class _Memory:
    """One measurement per iteration gives both figures: the PSS variant starts the containers
    and measures; the RSS variant (run right after it) returns the RSS of that measurement."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.rss = 0.0

    def pss_once(self) -> float:
        with self.running() as monitors:
            time.sleep(0.5)
            sizes = smem_kib(monitors)
        if len(sizes) != N_SHIMS:
            raise RuntimeError(f"smem listed {len(sizes)} of {N_SHIMS} monitors")
        self.rss = sum(r for _p, r in sizes.values()) / len(sizes) / 1024
        return sum(p for p, _r in sizes.values()) / len(sizes) / 1024

    def rss_once(self) -> float:
        return self.rss


def _sampan_shims() -> Running:
    from sampan import errors
    from sampan.runtime.forkserver import ForkServer, start_shim
    from sampan.runtime.shimproto import ShimClient

    rootfs = _rootfs()

    @contextlib.contextmanager
    def running() -> Iterator[list[int]]:
        work = Path(tempfile.mkdtemp(prefix="rtbench-shim-", dir="/var/tmp"))
        fs = ForkServer.start()
        clients: list[ShimClient] = []
        try:
            pids = []
            for i in range(N_SHIMS):
                bundle = work / f"b{i}"
                bundle.mkdir()
                (bundle / "config.json").write_text(json.dumps(
                    _config(["sleep", "1000"], rootfs, f"/{CGROUP_PARENT}/shim{i}", readonly=True)))
                h = start_shim(container_id=f"rtbench-shim{i}", bundle=str(bundle), runtime="sampan",
                               runtime_root=str(work / "rt"), state_dir=str(work / f"s{i}"),
                               log_path=str(work / f"s{i}.log"), forkserver=fs)
                client = ShimClient(h.socket_path)
                clients.append(client)
                client.start()
                pids.append(h.pid)
            yield pids
        finally:
            for client in clients:
                with contextlib.suppress(errors.SampanError):
                    client.delete(force=True)
            fs.close()
            _remove_cgroup_parent()
            shutil.rmtree(work, ignore_errors=True)

    return running


def _peer_monitors(cli: list[str], env: dict[str, str], rm: list[str]) -> Running:
    """Monitors of N ``sleep`` containers run with ``cli`` (docker or podman): their pid 1's parent."""

    @contextlib.contextmanager
    def running() -> Iterator[list[int]]:
        ids: list[str] = []
        try:
            for _ in range(N_SHIMS):
                out = subprocess.run([*cli, "run", "-d", "--network", "none", "busybox", "sleep", "1000"],
                                     env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"{cli[0]} run -d: {out.stderr[-300:]}")
                ids.append(out.stdout.strip())
            listed = subprocess.run([*cli, "inspect", "--format", "{{.State.Pid}}", *ids],
                                    env=env, capture_output=True, text=True).stdout.split()
            yield [_ppid(int(p)) for p in listed if p.isdigit() and int(p) > 0]
        finally:
            if ids:
                subprocess.run([*rm, *ids], env=env, capture_output=True)

    return running


def shim_memory(ctx: Context) -> Scenario:
    if shutil.which("smem") is None:
        raise RuntimeError("Debian's smem is not installed")
    s = MeasuredScenario("shim-memory", f"RSS and PSS per container monitor, {N_SHIMS} running `sleep` containers (smem)")
    engines: dict[str, Running] = {"sampan": _sampan_shims()}
    if ctx.peers and docker_available():
        engines["containerd-shim"] = _peer_monitors(["docker"], docker_env(), ["docker", "rm", "-f"])
    penv = podman_env() if ctx.peers else None
    if penv is not None:
        engines["conmon"] = _peer_monitors(podman(), penv, [*podman(), "rm", "-f", "-t", "0"])
    for name, running in engines.items():
        m = _Memory(running)
        s.variants[name] = m.pss_once
        s.variants[f"{name} RSS"] = m.rss_once
    return s


SCENARIOS: dict[str, Callable[[Context], Scenario]] = {
    "runtime-run": runtime_run,
    "shim-memory": shim_memory,
}
