"""The shim driving real runtimes on a busybox bundle: runc (CLI) and sampan's own runtime
(in-process, when ``sampan.runtime.container`` is present)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sampan import errors
from sampan.runtime.forkserver import ForkServer, ShimHandle, start_shim
from sampan.runtime.shimproto import ShimClient

pytestmark = pytest.mark.root

RUNC = shutil.which("runc")


def _has_sampan_runtime() -> bool:
    try:
        import sampan.runtime.container  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def rootfs(busybox_rootfs_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    root.mkdir()
    with tarfile.open(busybox_rootfs_tar) as tar:
        tar.extractall(root, filter="fully_trusted")
    return root


@pytest.fixture(scope="module")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if RUNC is None:
        pytest.skip("runc is not installed")
    d = tmp_path_factory.mktemp("spec")
    subprocess.run([RUNC, "spec"], cwd=d, check=True)
    config: dict[str, Any] = json.loads((d / "config.json").read_text())
    return config


@pytest.fixture(scope="module")
def forkserver() -> Iterator[ForkServer]:
    fs = ForkServer.start()
    yield fs
    fs.close()


class Bundles:
    def __init__(self, tmp: Path, rootfs: Path, base: dict[str, Any], fs: ForkServer) -> None:
        self.tmp, self.rootfs, self.base, self.fs = tmp, rootfs, base, fs
        self.started: list[tuple[ShimHandle, str]] = []
        self.parent = f"sampan-h4b-{os.getpid()}"

    def start(self, runtime: str, args: list[str], *, tty: bool = False, **kw: Any) -> ShimClient:
        name = f"sampan-{len(self.started)}"
        bundle = self.tmp / name
        bundle.mkdir()
        config = json.loads(json.dumps(self.base))
        config["root"] = {"path": str(self.rootfs), "readonly": True}
        config["process"]["args"] = args
        config["process"]["terminal"] = tty
        config["linux"]["cgroupsPath"] = f"/{self.parent}/{name}"
        (bundle / "config.json").write_text(json.dumps(config))
        h = start_shim(
            container_id=name,
            bundle=str(bundle),
            runtime=runtime,
            runtime_root=str(self.tmp / "rt"),
            state_dir=str(self.tmp / f"state-{name}"),
            log_path=str(self.tmp / f"{name}.log"),
            tty=tty,
            forkserver=self.fs,
            **kw,
        )
        self.started.append((h, name))
        return ShimClient(h.socket_path)

    def log(self, index: int) -> list[dict[str, str]]:
        text = (self.tmp / f"sampan-{index}.log").read_text()
        return [json.loads(line) for line in text.splitlines()]

    def cleanup(self) -> None:
        for h, _name in self.started:
            with contextlib.suppress(errors.SampanError):
                ShimClient(h.socket_path).delete(force=True)
        for ctrl in Path("/sys/fs/cgroup").iterdir():  # runc leaves the parent cgroup
            with contextlib.suppress(OSError):
                (ctrl / self.parent).rmdir()


@pytest.fixture
def bundles(
    tmp_path: Path, rootfs: Path, base_config: dict[str, Any], forkserver: ForkServer
) -> Iterator[Bundles]:
    b = Bundles(tmp_path, rootfs, base_config, forkserver)
    yield b
    b.cleanup()


RUNTIMES = [
    pytest.param("runc", id="runc"),
    pytest.param(
        "sampan",
        id="sampan",
        marks=pytest.mark.skipif(
            not _has_sampan_runtime(), reason="sampan.runtime.container absent"
        ),
    ),
]


def _runtime(name: str) -> str:
    return str(RUNC) if name == "runc" else "sampan"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_busybox_exit_code_and_log(bundles: Bundles, runtime: str) -> None:
    c = bundles.start(_runtime(runtime), ["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    c.start()
    st = c.wait(timeout=20)
    assert (st["exit_code"], st["signal"]) == (3, None)
    assert sorted((e["stream"], e["log"]) for e in bundles.log(0)) == [
        ("stderr", "oops\n"),
        ("stdout", "hello\n"),
    ]
    c.delete()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_busybox_tty_resize_attach(bundles: Bundles, runtime: str) -> None:
    c = bundles.start(
        _runtime(runtime), ["sh", "-c", "stty size; read x; echo got $x"], tty=True, stdin_open=True
    )
    c.resize(33, 77)
    sock = c.attach(stdin=True)
    assert c.status()["tty"]
    c.start()
    with sock:
        sock.sendall(b"xyz\n")
        buf = bytearray()
        while chunk := sock.recv(4096):
            buf += chunk
    assert b"33 77" in buf and b"got xyz" in buf
    assert c.wait(timeout=20)["exit_code"] == 0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_busybox_signals(bundles: Bundles, runtime: str) -> None:
    c = bundles.start(_runtime(runtime), ["sleep", "60"])
    c.start()
    c.signal(signal.SIGKILL)
    st = c.wait(timeout=20)
    assert (st["exit_code"], st["signal"]) == (137, signal.SIGKILL)
    c2 = bundles.start(_runtime(runtime), ["sh", "-c", "sleep 60 & sleep 60"])
    c2.start()
    c2.signal(signal.SIGKILL, all=True)
    assert c2.wait(timeout=20)["exit_code"] == 137
