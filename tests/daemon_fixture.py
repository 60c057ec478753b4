"""A real sampand for tests: started on a temporary socket and data root, always stopped.

Use the ``daemon`` fixture (import it into a test module: ``from tests.daemon_fixture import
daemon``) or :func:`start_daemon` for more control (extra flags, a second daemon)::

    def test_ping(daemon):
        status, headers, body = daemon.request("GET", "/_ping")

The daemon runs as ``python -m sampan.daemon --data-root D -H unix://S --exec-root E --pidfile
P --debug``; its log is ``daemon.log`` (shown when start-up fails).  Tests of the daemon itself
live in ``tests/integration/daemon/``.  The daemon inherits the test's ``SAMPAN_TEST_ID``, so the
leak checker of tests/conftest.py finds whatever it leaves behind, even after it died.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class Daemon:
    dir: Path  # short directory holding the socket (unix socket paths are limited to 107 bytes)
    data_root: Path
    exec_root: Path
    pidfile: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.dir / "sampan.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def args(self) -> list[str]:
        return [
            sys.executable, "-m", "sampan.daemon",
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "-H", self.url,
            "--pidfile", str(self.pidfile),
            "--debug",
            *self.extra,
        ]

    def start(self, timeout: float = 15) -> None:
        logf = open(self.log, "ab")  # noqa: SIM115 - the child keeps it
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(self.args(), stdout=logf, stderr=logf, env=env, cwd=REPO)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sampand exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.request("GET", "/_ping", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"sampand did not answer /_ping within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def connection(self, timeout: float = 60) -> UnixHTTPConnection:
        return UnixHTTPConnection(str(self.socket), timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Response:
        conn = self.connection(timeout)
        try:
            if body is not None and not isinstance(body, (bytes, str)) and not hasattr(body, "read"):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def env(self) -> dict[str, str]:
        """Environment for the docker CLI against this daemon."""
        return {**os.environ, "DOCKER_HOST": self.url, "DOCKER_CONFIG": str(self.dir / "docker-config")}


def new_daemon(tmp_path: Path, *extra: str) -> Daemon:
    tmp_path.mkdir(parents=True, exist_ok=True)
    short = Path(tempfile.mkdtemp(prefix="sp-", dir="/tmp"))
    # Networking stays out of the way of tests that do not ask for it: no default bridge
    # (containers get --network none unless a test passes --bridge), and an nft table of its own.
    if "--bridge" not in extra:
        extra = (*extra, "--bridge", "none")
    if "--nft-table" not in extra:
        extra = (*extra, "--nft-table", "sampan_d" + short.name.replace("sp-", "").replace("-", "_"))
    d = Daemon(
        dir=short,
        data_root=tmp_path / "data",
        exec_root=short / "exec",
        pidfile=short / "sampand.pid",
        log=tmp_path / "daemon.log",
        extra=list(extra),
    )
    return d


def start_daemon(tmp_path: Path, *extra: str) -> Daemon:
    d = new_daemon(tmp_path, *extra)
    d.start()
    return d


def cleanup(d: Daemon) -> None:
    d.stop()
    shutil.rmtree(d.dir, ignore_errors=True)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = new_daemon(tmp_path)
    try:
        d.start()
        yield d
    finally:
        cleanup(d)
