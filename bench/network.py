"""Network scenarios (issue 5): `run --rm` on the default bridge and with a published port, and
TCP throughput through a published port, for sampan beside docker and podman.

* ``run-rm-bridge``: CLI start to exit of ``run --rm busybox true`` on each engine's default
  bridge network.
* ``run-rm-publish``: the same with ``-p <port>:80`` (each engine its own host port).
* ``tcp-publish``: 200 MiB sent to ``127.0.0.1:<port>``, published to a container whose busybox
  ``nc`` reads it into /dev/null; one iteration times the transfer (container set-up excluded).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable

from bench.containers import _ensure_busybox, podman, podman_env
from bench.engines import docker_available, docker_env
from bench.scenarios import Context, Scenario, _run, _timed

PAYLOAD = 200 << 20
PORTS = {"sampan": 18080, "docker": 18081, "podman": 18082}


def _engines(ctx: Context) -> dict[str, tuple[list[str], dict[str, str] | None]]:
    """engine -> (CLI prefix, environment)."""
    out: dict[str, tuple[list[str], dict[str, str] | None]] = {"sampan": (ctx.sampand.cli(), None)}
    if ctx.peers and docker_available():
        out["docker"] = (["docker"], docker_env())
    env = podman_env() if ctx.peers else None
    if env is not None:
        out["podman"] = (podman(), env)
    return out


def run_rm_bridge(ctx: Context) -> Scenario:
    _ensure_busybox(ctx)
    s = Scenario("run-rm-bridge", "`run --rm busybox true` on the default bridge")
    for engine, (cli, env) in _engines(ctx).items():
        s.variants[engine] = _timed([*cli, "run", "--rm", "busybox", "true"], env)
    return s


def run_rm_publish(ctx: Context) -> Scenario:
    _ensure_busybox(ctx)
    s = Scenario("run-rm-publish", "`run --rm -p PORT:80 busybox true`")
    for engine, (cli, env) in _engines(ctx).items():
        s.variants[engine] = _timed([*cli, "run", "--rm", "-p", f"{PORTS[engine]}:80", "busybox", "true"], env)
    return s


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _transfer(cli: list[str], env: dict[str, str] | None, port: int) -> Callable[[], float]:
    def once() -> float:
        name = f"sampan-bench-tcp-{port}"
        subprocess.run([*cli, "rm", "-f", name], env=env, capture_output=True)
        # the listener reads two connections: the readiness probe, then the timed transfer
        _run([*cli, "run", "-d", "--name", name, "-p", f"{port}:8080", "busybox", "sh", "-c",
              "nc -l -p 8080 >/dev/null; nc -l -p 8080 >/dev/null"], env)
        try:
            _wait_port(port)
            time.sleep(0.2)  # the probe's connection has closed and the second nc listens
            chunk = b"\0" * (1 << 20)
            t0 = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for _ in range(PAYLOAD // len(chunk)):
                    sock.sendall(chunk)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(30)
                while sock.recv(1 << 16):
                    pass
            return time.perf_counter() - t0
        finally:
            subprocess.run([*cli, "rm", "-f", name], env=env, capture_output=True)

    return once


def tcp_publish(ctx: Context) -> Scenario:
    _ensure_busybox(ctx)
    s = Scenario("tcp-publish", "200 MiB through a published port on 127.0.0.1 (time; lower is faster)")
    for engine, (cli, env) in _engines(ctx).items():
        if engine == "podman" and not shutil.which("podman"):
            continue
        s.variants[engine] = _transfer(cli, env, PORTS[engine] + 10)
    return s


SCENARIOS: dict[str, Callable[[Context], Scenario]] = {
    "run-rm-bridge": run_rm_bridge,
    "run-rm-publish": run_rm_publish,
    "tcp-publish": tcp_publish,
}
