"""``sampan build`` against a real sampand: a directory context with .dockerignore, -f outside
the context, -f -, a tar on stdin, --iidfile, -q, --build-arg, --label, --target, errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, cleanup, start_daemon

REPO = Path(__file__).resolve().parent.parent.parent
pytestmark = [pytest.mark.root, pytest.mark.timeout(300)]


@pytest.fixture
def sampand(tmp_path: Path, busybox_rootfs_tar: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path / "d")
    try:
        sampan(d, "import", "-c", 'CMD ["sh"]', str(busybox_rootfs_tar), "busybox:latest")
        yield d
    finally:
        cleanup(d)


def sampan(d: Daemon, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "SAMPAN_HOST": d.url, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "sampan.cli", *args], env=env, capture_output=True,
                          input=stdin, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"sampan {' '.join(args)}: {proc.returncode}\n{proc.stdout.decode()}{proc.stderr.decode()}")
    return proc


def inspect(d: Daemon, name: str) -> dict:  # type: ignore[type-arg]
    r = d.request("GET", f"/images/{name}/json")
    assert r.status == 200, r.body
    return r.json()  # type: ignore[no-any-return]


def test_sampan_build_directory_and_flags(sampand: Daemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "main.txt").write_text("main\n")
    (ctx / "secret.key").write_text("nope\n")
    (ctx / ".dockerignore").write_text("*.key\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS base\nARG GREETING=hi\nRUN echo $GREETING > /greeting\n"
        "FROM base AS final\nCOPY . /src/\nCMD [\"cat\", \"/greeting\"]\n"
        "FROM busybox AS unused\nRUN exit 1\n"
    )
    iid = tmp_path / "iid"
    r = sampan(sampand, "build", "--progress", "plain", "-t", "app:1", "--build-arg", "GREETING=hello",
               "--label", "team=core", "--target", "final", "--iidfile", str(iid), str(ctx))
    out = r.stdout.decode()
    assert "Step 1/7 : FROM busybox AS base" in out, out
    assert "Successfully tagged app:1" in out
    info = inspect(sampand, "app:1")
    assert info["Id"] == iid.read_text()
    assert info["Config"]["Labels"] == {"team": "core"}
    assert info["Config"]["Cmd"] == ["cat", "/greeting"]
    # the file tree: .dockerignore'd file absent, others present
    r = sampand.request("GET", "/images/app:1/get")
    assert r.status == 200
    names = _image_files(r.body)
    assert "src/app/main.txt" in names and "src/Dockerfile" in names
    assert "src/secret.key" not in names
    assert names["greeting"] == b"hello\n"
    # -q prints only the ID; everything cached
    r = sampan(sampand, "build", "-q", "-t", "app:1", "--build-arg", "GREETING=hello", "--label", "team=core",
               "--target", "final", str(ctx))
    assert r.stdout.decode().strip() == info["Id"]


def test_sampan_build_stdin_and_errors(sampand: Daemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x\n")
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM busybox\nCOPY f /f\n")
    sampan(sampand, "build", "-t", "o:1", "-f", str(outside), str(ctx))
    sampan(sampand, "build", "-t", "o:2", "-f", "-", str(ctx), stdin=b"FROM busybox\nENV A=1\n")
    assert "A=1" in inspect(sampand, "o:2")["Config"]["Env"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"FROM busybox\nLABEL from=stdin\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    sampan(sampand, "build", "-t", "o:3", "-", stdin=buf.getvalue())
    assert inspect(sampand, "o:3")["Config"]["Labels"] == {"from": "stdin"}
    sampan(sampand, "build", "-t", "o:4", "-", stdin=b"FROM busybox\nLABEL plain=dockerfile\n")  # no tar
    assert inspect(sampand, "o:4")["Config"]["Labels"] == {"plain": "dockerfile"}
    r = sampan(sampand, "build", "--progress", "tty", "-f", "-", str(ctx),
               stdin=b"FROM busybox\nRUN echo why-it-failed; exit 7\n", check=False)
    assert r.returncode != 0
    assert "\x1b[K" in r.stdout.decode() and "why-it-failed\n" in r.stdout.decode()  # compact, output kept
    assert "The command '/bin/sh -c echo why-it-failed; exit 7' returned a non-zero code: 7" in r.stderr.decode()
    assert "Traceback" not in r.stderr.decode()
    r = sampan(sampand, "build", "-f", "-", str(ctx), stdin=b"FROM nosuchimage\n", check=False)
    assert r.returncode != 0 and "nosuchimage" in r.stderr.decode()


def _image_files(archive: bytes) -> dict[str, bytes]:
    """Every regular file of a saved image's layers (later layers win)."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:  # type: ignore[arg-type]
                for m in inner.getmembers():
                    f = inner.extractfile(m) if m.isfile() else None
                    files[m.name.rstrip("/")] = f.read() if f else b""
    return files


def test_from_pulls_a_missing_image(sampand: Daemon, tmp_path: Path) -> None:
    from registry_harness import start_server

    registry = start_server(tmp_path / "reg")
    try:
        name = f"{registry.addr}/lib/busybox:1"
        sampan(sampand, "tag", "busybox:latest", name)
        sampan(sampand, "push", name)
        sampan(sampand, "rmi", name)
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        r = sampan(sampand, "build", "--progress", "plain", "-t", "pulled:1", "-f", "-", str(ctx),
                   stdin=f"FROM {name}\nRUN echo pulled > /p\n".encode())
        out = r.stdout.decode()
        assert "Pulling from lib/busybox" in out, out
        assert inspect(sampand, name)["Id"] == inspect(sampand, "busybox:latest")["Id"]
        # --pull asks the registry even though the image is local now
        r = sampan(sampand, "build", "--pull", "--progress", "plain", "-f", "-", str(ctx),
                   stdin=f"FROM {name}\nRUN echo pulled > /p\n".encode())
        assert "Image is up to date" in r.stdout.decode() or "Digest:" in r.stdout.decode(), r.stdout.decode()
    finally:
        registry.stop()
