"""Registry scenarios: push and pull of the 200 MiB image, sampan vs docker vs skopeo, and
skopeo pulling from sampan's registry server vs from docker-registry.

Every registry here is the CNCF distribution registry (``docker-registry``, the same binary as
the peers' one on 127.0.0.1:5000) on a free loopback port, or ``sampan registry serve`` when that
binary is absent (smoke runs).  A push always goes to a *fresh, empty* registry (started
untimed before the iteration), so no tool skips an upload because the registry already has the
blob or mounts it from another repository; sampan's image is reloaded before each push so its
compressed-layer cache is cold too: each push compresses and uploads 200 MiB, as skopeo's does.
A pull starts with the image (and every image sharing its layers) removed.  Rates are counted
in source bytes (200 MiB / median seconds).
"""

from __future__ import annotations

import atexit
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.engines import docker_available, docker_env
from bench.scenarios import Context, Scenario, _big_archive, _run, _timed

SIZE = 200 << 20
_STARTED: list[subprocess.Popen[bytes]] = []


def _stop_all() -> None:
    for proc in _STARTED:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


atexit.register(_stop_all)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """A registry process on 127.0.0.1:<port> with its storage in a temporary directory."""

    def __init__(self, kind: str = "") -> None:
        self.kind = kind or ("docker-registry" if shutil.which("docker-registry") else "sampan")
        self.dir = Path(tempfile.mkdtemp(prefix="sampan-bench-registry-", dir="/var/tmp"))
        atexit.register(shutil.rmtree, self.dir, True)  # also when stop() is never reached
        self.port = _free_port()
        if self.kind == "docker-registry":
            config = self.dir / "config.yml"
            config.write_text(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n"
            )
            cmd = [shutil.which("docker-registry") or "docker-registry", "serve", str(config)]
        else:
            cmd = [sys.executable, "-m", "sampan.registry_main", "serve", "--addr", f"127.0.0.1:{self.port}",
                   "--storage", str(self.dir / "data")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        _STARTED.append(self.proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not start on port {self.port}")

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _skopeo() -> str | None:
    return shutil.which("skopeo")


def push_big(ctx: Context) -> Scenario:
    archive, name = _big_archive(ctx)
    s = Scenario("push-200m", "push of the 200 MiB image to a fresh docker-registry (gzip layers)")
    current: dict[str, Registry] = {}

    def fresh(engine: str) -> Registry:
        if engine in current:
            current.pop(engine).stop()
        current[engine] = Registry()
        return current[engine]

    def sampan_push() -> float:
        reg = fresh("sampan")
        subprocess.run(ctx.sampand.cli("rmi", "-f", name), capture_output=True)
        _run(ctx.sampand.cli("load", "-q", "-i", str(archive)))  # drops the compressed-layer cache
        target = f"{reg.addr}/bench/big:latest"
        _run(ctx.sampand.cli("tag", name, target))
        t0 = time.perf_counter()
        _run(ctx.sampand.cli("push", "-q", target))
        elapsed = time.perf_counter() - t0
        subprocess.run(ctx.sampand.cli("rmi", target), capture_output=True)
        return elapsed

    s.variants["sampan"] = sampan_push
    if ctx.peers and docker_available():
        env = docker_env()

        def docker_push() -> float:
            reg = fresh("docker")
            target = f"{reg.addr}/bench/big:latest"
            subprocess.run(["docker", "rmi", "-f", name], capture_output=True, env=env)
            _run(["docker", "load", "-q", "-i", str(archive)], env)
            _run(["docker", "tag", name, target], env)
            t0 = time.perf_counter()
            _run(["docker", "push", "-q", target], env)
            elapsed = time.perf_counter() - t0
            subprocess.run(["docker", "rmi", target], capture_output=True, env=env)
            return elapsed

        s.variants["docker"] = docker_push
    if ctx.peers and _skopeo():

        def skopeo_push() -> float:
            reg = fresh("skopeo")
            t0 = time.perf_counter()
            _run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"docker-archive:{archive}",
                  f"docker://{reg.addr}/bench/big:latest"])
            return time.perf_counter() - t0

        s.variants["skopeo"] = skopeo_push
    return s


def _seeded_registry(ctx: Context, kind: str = "") -> tuple[Registry, str]:
    """A registry holding the 200 MiB image (pushed by sampan), and its reference."""
    archive, name = _big_archive(ctx)
    reg = Registry(kind)
    target = f"{reg.addr}/bench/big:latest"
    _run(ctx.sampand.cli("load", "-q", "-i", str(archive)))
    _run(ctx.sampand.cli("tag", name, target))
    _run(ctx.sampand.cli("push", "-q", target))
    _run(ctx.sampand.cli("rmi", "-f", target, name))  # nothing of it stays in sampan
    return reg, target


def pull_big(ctx: Context) -> Scenario:
    _, target = _seeded_registry(ctx)
    s = Scenario("pull-200m", "pull of the 200 MiB image from docker-registry, layers unpacked (skopeo: to a dir)")

    def sampan_rmi() -> None:
        subprocess.run(ctx.sampand.cli("rmi", "-f", target), capture_output=True)

    s.variants["sampan"] = _timed(ctx.sampand.cli("pull", "-q", target), before=sampan_rmi)
    if ctx.peers and docker_available():
        env = docker_env()

        loaded = _big_archive(ctx)[1]  # what the push scenario loaded into dockerd

        def docker_rmi() -> None:
            # the image under every name it has (by ID): a layer dockerd still has is not
            # downloaded again
            ids = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", target, loaded],
                                 capture_output=True, text=True, env=env).stdout.split()
            if ids:
                subprocess.run(["docker", "rmi", "-f", *set(ids)], capture_output=True, env=env)

        s.variants["docker"] = _timed(["docker", "pull", "-q", target], env, before=docker_rmi)
    if ctx.peers and _skopeo():
        out = Path(tempfile.mkdtemp(prefix="sampan-bench-skopeo-", dir="/var/tmp"))
        atexit.register(shutil.rmtree, out, True)

        def skopeo_clean() -> None:
            shutil.rmtree(out / "dir", ignore_errors=True)

        s.variants["skopeo"] = _timed(
            ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{target}", f"dir:{out / 'dir'}"],
            before=skopeo_clean,
        )
    return s


def serve_big(ctx: Context) -> Scenario:
    """skopeo pulling the 200 MiB image from sampan's registry server vs from docker-registry."""
    s = Scenario("serve-200m", "skopeo copy of the 200 MiB image to a dir: from sampan's registry vs docker-registry")
    if not _skopeo():
        raise RuntimeError("skopeo is not installed")
    out = Path(tempfile.mkdtemp(prefix="sampan-bench-serve-", dir="/var/tmp"))
    atexit.register(shutil.rmtree, out, True)
    kinds = {"sampan": "sampan"}
    if shutil.which("docker-registry"):
        kinds["docker-registry"] = "docker-registry"
    for engine, kind in kinds.items():
        _, target = _seeded_registry(ctx, kind)
        dest = out / engine

        def clean(dest: Path = dest) -> None:
            shutil.rmtree(dest, ignore_errors=True)

        s.variants[engine] = _timed(
            ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{target}", f"dir:{dest}"], before=clean
        )
    return s


SCENARIOS: dict[str, Callable[[Context], Scenario]] = {"push-200m": push_big, "pull-200m": pull_big, "serve-200m": serve_big}
