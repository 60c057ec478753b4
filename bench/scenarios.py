"""The scenarios: each names, per engine, one timed iteration (and the untimed set-up it needs).

Add a scenario by writing a function that returns a :class:`Scenario` and listing it in
``SCENARIOS``.  Timings are wall-clock seconds of whole commands, as a user would see them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.engines import Sampand, docker_available, docker_env

CACHE = Path(os.environ.get("SAMPAN_TEST_CACHE", "/var/tmp/sampan-test-cache"))
PEERS = Path(os.environ.get("SAMPAN_PEERS_DIR", "/var/tmp/sampan-peers"))
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Context:
    sampand: Sampand
    peers: bool  # compare with the peer engines in this run


@dataclass
class Scenario:
    name: str
    what: str
    #: engine name -> one iteration returning its measured seconds
    variants: dict[str, Callable[[], float]] = field(default_factory=dict)


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    r = subprocess.run(cmd, env=env, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}")


def _timed(cmd: list[str], env: dict[str, str] | None = None, before: Callable[[], None] | None = None) -> Callable[[], float]:
    def once() -> float:
        if before:
            before()
        t0 = time.perf_counter()
        _run(cmd, env)
        return time.perf_counter() - t0

    return once


def cli_start(ctx: Context) -> Scenario:
    s = Scenario("cli-start", "`sampan version` vs `docker version` (CLI start + one API round trip)")
    s.variants["sampan"] = _timed(ctx.sampand.cli("version"))
    if ctx.peers and docker_available():
        s.variants["docker"] = _timed(["docker", "version"], docker_env())
    return s


def _big_archive(ctx: Context) -> tuple[Path, str]:
    """A 200 MiB single-layer image archive (a rootfs with one 200 MiB random file) and its name.

    sampan makes it once per cache, so its layer is unique: the peers' ``lab/big`` shares its
    layer with the intermediate images of setup.sh's ``docker build``, so ``docker rmi`` there
    leaves the layer in place and a timed ``docker load`` would unpack nothing.
    """
    archive = CACHE / "big.sampan-archive.tar"
    name = "bench/big:latest"
    if not archive.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        rootfs = CACHE / "big-rootfs.tar"
        if not rootfs.exists():
            work = CACHE / "big-rootfs"
            work.mkdir(exist_ok=True)
            with open(work / "blob", "wb") as f:
                for _ in range(200):
                    f.write(os.urandom(1 << 20))
            _run(["tar", "-C", str(work), "--numeric-owner", "-cf", f"{rootfs}.tmp", "."])
            os.rename(f"{rootfs}.tmp", rootfs)
            (work / "blob").unlink()
            work.rmdir()
        _run(ctx.sampand.cli("import", str(rootfs), name))
        _run(ctx.sampand.cli("save", "-o", f"{archive}.tmp", name))
        os.rename(f"{archive}.tmp", archive)
    return archive, name


def load_big(ctx: Context) -> Scenario:
    archive, name = _big_archive(ctx)
    s = Scenario("load-200m", "`load -i` of a 200 MiB single-layer image, layers unpacked")

    def sampan_rmi() -> None:
        subprocess.run(ctx.sampand.cli("rmi", "-f", name), capture_output=True)

    s.variants["sampan"] = _timed(ctx.sampand.cli("load", "-q", "-i", str(archive)), before=sampan_rmi)
    if ctx.peers and docker_available():
        env = docker_env()

        def docker_rmi() -> None:
            # also what an interrupted pull-200m left (<registry>/bench/big): dockerd would find
            # the layer already there and skip unpacking it
            listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                                    capture_output=True, text=True, env=env).stdout.split()
            stale = [ref for ref in listed if ref.split(":")[-2].endswith("/bench/big")]
            subprocess.run(["docker", "rmi", "-f", name, *stale], capture_output=True, env=env)

        s.variants["docker"] = _timed(["docker", "load", "-q", "-i", str(archive)], env, before=docker_rmi)
    return s


def save_big(ctx: Context) -> Scenario:
    archive, name = _big_archive(ctx)
    _run(ctx.sampand.cli("load", "-q", "-i", str(archive)))
    out = CACHE / "bench-save-out.tar"
    s = Scenario("save-200m", "`save -o` of the 200 MiB image")
    s.variants["sampan"] = _timed(ctx.sampand.cli("save", "-o", str(out), name))
    if ctx.peers and docker_available():
        env = docker_env()
        _run(["docker", "load", "-q", "-i", str(archive)], env)
        s.variants["docker"] = _timed(["docker", "save", "-o", str(out), name], env)
    return s


SCENARIOS: dict[str, Callable[[Context], Scenario]] = {
    "cli-start": cli_start,
    "load-200m": load_big,
    "save-200m": save_big,
}

# registry scenarios (push-200m, pull-200m, serve-200m) live in their own module
from bench.registry import SCENARIOS as _REGISTRY_SCENARIOS  # noqa: E402

SCENARIOS.update(_REGISTRY_SCENARIOS)

# container scenarios (run-rm, run-d-rm-50, mem-per-container) live in their own module
from bench.containers import SCENARIOS as _CONTAINER_SCENARIOS  # noqa: E402

SCENARIOS.update(_CONTAINER_SCENARIOS)

# build scenarios (build-5-cold/cached, build-20-cold/cached) live in their own module
from bench.builds import SCENARIOS as _BUILD_SCENARIOS  # noqa: E402

SCENARIOS.update(_BUILD_SCENARIOS)

# runtime scenarios (runtime-run, shim-memory) live in their own module
from bench.runtime import SCENARIOS as _RUNTIME_SCENARIOS  # noqa: E402

SCENARIOS.update(_RUNTIME_SCENARIOS)

# network scenarios (run-rm-bridge, run-rm-publish, tcp-publish) live in their own module
from bench.network import SCENARIOS as _NETWORK_SCENARIOS  # noqa: E402

SCENARIOS.update(_NETWORK_SCENARIOS)
