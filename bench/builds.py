"""Build scenarios: the peers' 5-step Dockerfile and a 20-step one, cold and fully cached.

* ``build-5-cold`` / ``build-5-cached``: ``$SAMPAN_PEERS_DIR/build`` (``FROM busybox``, a RUN,
  ``COPY a /big`` of 10 MiB, ENV, CMD; made here when the peers' setup has not run);
* ``build-20-cold`` / ``build-20-cached``: 20 steps (RUNs, COPYs, metadata) on busybox.

Cold = base image local, no cache (``--no-cache``); cached = the same build again.  sampan runs
``sampan build -q``; the peers ``DOCKER_BUILDKIT=0 docker build -q`` and ``podman build -q``.
Targets (issue 7): cold <= 0.8x docker's, cached <= 1.0x.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.containers import _ensure_busybox
from bench.engines import docker_available, docker_env
from bench.scenarios import CACHE, PEERS, Context, Scenario, _timed

FIVE = 'FROM busybox\nRUN echo hi > /a\nCOPY a /big\nENV X=1\nCMD ["sh"]\n'


def _five() -> Path:
    ctx = PEERS / "build"
    if (ctx / "Dockerfile").exists() and (ctx / "a").exists():
        return ctx
    ctx = CACHE / "bench-build-5"
    ctx.mkdir(parents=True, exist_ok=True)
    if not (ctx / "a").exists():
        (ctx / "a").write_bytes(os.urandom(10 << 20))
    (ctx / "Dockerfile").write_text(FIVE)
    return ctx


def _twenty() -> Path:
    ctx = CACHE / "bench-build-20"
    ctx.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        (ctx / f"f{i}").write_text(f"file {i}\n" * 100)
    lines = ["FROM busybox", "ARG V=1", "ENV A=1 B=2", "WORKDIR /app", "LABEL stage=bench"]
    for i in range(4):
        lines += [f"COPY f{i} /app/f{i}", f"RUN cat /app/f{i} | wc -l > /app/n{i}"]
    lines += ["RUN mkdir -p /data && echo $V > /data/v", "EXPOSE 8080", "VOLUME /data", "USER nobody",
              "ENV C=3", 'ENTRYPOINT ["sh", "-c"]', 'CMD ["cat /app/n0"]']
    assert len(lines) == 20
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    return ctx


_PODMAN: list[bool] = []


def _podman_available() -> bool:
    """podman with a busybox image that can run a container here (crun refuses hybrid
    cgroups unless the peers' set-up configured it)."""
    if not _PODMAN:
        _PODMAN.append(bool(shutil.which("podman")) and subprocess.run(
            ["podman", "run", "--rm", "busybox", "true"], capture_output=True, timeout=60).returncode == 0)
    return _PODMAN[0]


def _scenario(ctx: Context, name: str, context: Path, cold: bool) -> Scenario:
    _ensure_busybox(ctx)
    what = f"build of {context.name}'s Dockerfile, " + ("no cache (base local)" if cold else "all steps cached")
    s = Scenario(name, what)
    flag = ["--no-cache"] if cold else []
    tag = f"bench/{name}:latest"
    warm: Callable[[], None] | None = None
    if not cold:
        subprocess.run(ctx.sampand.cli("build", "-q", "-t", tag, str(context)), capture_output=True)
    s.variants["sampan"] = _timed(ctx.sampand.cli("build", "-q", *flag, "-t", tag, str(context)), before=warm)
    if ctx.peers and docker_available():
        env = {**docker_env(), "DOCKER_BUILDKIT": "0"}
        if not cold:
            subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], env=env, capture_output=True)
        s.variants["docker"] = _timed(["docker", "build", "-q", *flag, "-t", tag, str(context)], env)
    if ctx.peers and _podman_available():
        if not cold:
            subprocess.run(["podman", "build", "-q", "-t", tag, str(context)], capture_output=True)
        s.variants["podman"] = _timed(["podman", "build", "-q", *flag, "-t", tag, str(context)])
    return s


SCENARIOS: dict[str, Callable[[Context], Scenario]] = {
    "build-5-cold": lambda ctx: _scenario(ctx, "build-5-cold", _five(), True),
    "build-5-cached": lambda ctx: _scenario(ctx, "build-5-cached", _five(), False),
    "build-20-cold": lambda ctx: _scenario(ctx, "build-20-cold", _twenty(), True),
    "build-20-cached": lambda ctx: _scenario(ctx, "build-20-cached", _twenty(), False),
}
