"""The engines a scenario can time: a private sampand, and the peers' dockerd/podman."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


def sampan_cli() -> list[str]:
    """The installed `sampan` console script (not a pyenv shim, which adds ~40 ms)."""
    script = Path(sysconfig.get_path("scripts")) / "sampan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sampan.cli"]


class Sampand:
    """A sampand on a temporary data root and socket; stopped by pid on exit."""

    def __init__(self, base: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sampan-bench-", dir=base or "/var/tmp"))
        self.sock = self.dir / "sampan.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SAMPAN_HOST": f"unix://{self.sock}", "DOCKER_HOST": f"unix://{self.sock}"}

    def cli(self, *args: str) -> list[str]:
        return [*sampan_cli(), "-H", f"unix://{self.sock}", *args]

    def __enter__(self) -> Sampand:
        log = open(self.dir / "sampand.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sampan.daemon", "--data-root", str(self.dir / "root"),
             "--exec-root", str(self.dir / "exec"), "-H", f"unix://{self.sock}",
             "--pidfile", str(self.dir / "sampand.pid"),
             # its own bridge, subnet and nft table: never the default sampan0 / inet sampan of
             # a sampand the user runs on this host
             "--bridge", "sampanbench0", "--bip", "10.230.0.1/24", "--nft-table", "sampan_bench"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sampand exited {self.proc.returncode}: {(self.dir / 'sampand.log').read_text()[-2000:]}")
            if subprocess.run(self.cli("version"), capture_output=True).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("sampand did not answer within 20 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


#: The peer dockerd: ../shared/peers/setup.sh's by default; SAMPAN_PEER_DOCKER_HOST names another.
DOCKER_HOST = os.environ.get("SAMPAN_PEER_DOCKER_HOST", "unix:///var/run/docker.sock")


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": DOCKER_HOST}


def docker_available() -> bool:
    return bool(shutil.which("docker")) and subprocess.run(
        ["docker", "version"], capture_output=True, env=docker_env()
    ).returncode == 0
