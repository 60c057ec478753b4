"""The real ``sampan`` CLI (a subprocess) against a real sampand: the images walk-through."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.cli.autostart import autostart
from sampan.client.address import parse_host
from tests.daemon_fixture import REPO, Daemon, cleanup, new_daemon

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

DOCKER = shutil.which("docker")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = new_daemon(tmp_path_factory.mktemp("cli"))
    try:
        d.start()
        yield d
    finally:
        cleanup(d)


def sampan(daemon: Daemon, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAMPAN_HOST": daemon.url, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "sampan.cli", *args], env=env, cwd=REPO, capture_output=True,
        input=stdin.decode("latin-1") if stdin is not None else None, text=True, errors="surrogateescape",
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sampan {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}\n{daemon.log_text()}")
    return proc


@pytest.fixture(scope="module")
def busybox(daemon: Daemon, busybox_rootfs_tar: Path) -> str:
    out = sampan(daemon, "import", "-c", 'CMD ["sh"]', "-m", "from the test", str(busybox_rootfs_tar), "busybox:latest")
    image_id = out.stdout.strip().splitlines()[-1]
    assert image_id.startswith("sha256:") and len(image_id) == 71
    return image_id


def test_images_tag_inspect_history(daemon: Daemon, busybox: str) -> None:
    sampan(daemon, "tag", "busybox", "localhost:5000/bb:v1")
    lines = sampan(daemon, "images").stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    rows = {tuple(line.split()[:3]) for line in lines[1:]}
    assert ("busybox", "latest", busybox[7:19]) in rows and ("localhost:5000/bb", "v1", busybox[7:19]) in rows
    assert sampan(daemon, "images", "-q", "--no-trunc", "busybox").stdout == busybox + "\n"
    assert sampan(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=busybox").stdout == "busybox:latest\n"
    fmt = '{{.Id}} {{json .Config.Cmd}} {{.Os}} {{.Comment}}'
    assert sampan(daemon, "inspect", "-f", fmt, "busybox").stdout == f'{busybox} ["sh"] linux from the test\n'
    doc = json.loads(sampan(daemon, "image", "inspect", "localhost:5000/bb:v1").stdout)
    assert doc[0]["Id"] == busybox and "busybox:latest" in doc[0]["RepoTags"]
    history = sampan(daemon, "history", "busybox").stdout.splitlines()
    assert history[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert history[1].startswith(busybox[7:19])
    assert sampan(daemon, "history", "-q", "--no-trunc", "busybox").stdout.splitlines()[0] == busybox
    sampan(daemon, "rmi", "localhost:5000/bb:v1")


def test_import_from_stdin_and_debug_trace(daemon: Daemon, busybox_rootfs_tar: Path) -> None:
    env = {**os.environ, "SAMPAN_HOST": daemon.url, "PYTHONPATH": str(REPO)}
    with open(busybox_rootfs_tar, "rb") as tar:
        proc = subprocess.run(
            [sys.executable, "-m", "sampan.cli", "-D", "import", "-", "piped:1"], env=env, cwd=REPO,
            stdin=tar, capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("sha256:")
    assert "DEBU POST /images/create?fromSrc=-&repo=piped%3A1 -> 200" in proc.stderr
    assert sampan(daemon, "images", "--format", "{{.Tag}}", "piped").stdout == "1\n"
    sampan(daemon, "rmi", "piped:1")


def test_errors_are_one_line_with_docker_codes(daemon: Daemon) -> None:
    proc = sampan(daemon, "rmi", "nosuchimage", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error response from daemon: ") and "nosuchimage" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = sampan(daemon, "inspect", "nosuchimage", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "[]\n", "Error: No such object: nosuchimage\n")
    proc = sampan(daemon, "images", "--bogus", check=False)
    assert proc.returncode == 125 and proc.stderr.startswith("unknown flag: --bogus")


def test_save_load_round_trip(daemon: Daemon, busybox: str, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    sampan(daemon, "save", "-o", str(archive), "busybox")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "index.json" in names
    assert [p.name for p in tmp_path.iterdir()] == ["busybox.tar"]  # no temp file left
    sampan(daemon, "rmi", "busybox")
    assert sampan(daemon, "images", "-q").stdout == ""
    out = sampan(daemon, "load", "-i", str(archive)).stdout
    assert "Loaded image: busybox:latest" in out
    assert sampan(daemon, "images", "-q", "--no-trunc").stdout == busybox + "\n"
    piped = sampan(daemon, "save", "busybox")  # to a pipe: allowed
    assert len(piped.stdout) > 0


def test_prune_and_system_df(daemon: Daemon, busybox: str) -> None:
    df = sampan(daemon, "system", "df").stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:2] == ["Images", "1"]
    proc = sampan(daemon, "image", "prune", stdin=b"n\n")
    assert proc.stdout.startswith("WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ")
    out = sampan(daemon, "image", "prune", "-f").stdout
    assert out.endswith("\n") and "Total reclaimed space:" in out
    assert sampan(daemon, "system", "df", "--format", "{{.Type}}={{.TotalCount}}").stdout.splitlines()[0] == "Images=1"


def test_version_and_info(daemon: Daemon) -> None:
    out = sampan(daemon, "version").stdout
    assert out.startswith("Client:\n") and "\nServer: " in out and "API version:      1.51 (minimum version 1.24)" in out
    assert sampan(daemon, "version", "-f", "{{.Server.ApiVersion}}").stdout == "1.51\n"
    info = sampan(daemon, "info").stdout
    assert "Server:" in info and " Storage Driver: " in info


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
@pytest.mark.parametrize("args", [["images"], ["images", "--digests"], ["history", "busybox"], ["system", "df"]])
def test_same_columns_as_the_docker_cli(daemon: Daemon, busybox: str, args: list[str]) -> None:
    docker = subprocess.run([DOCKER or "docker", *args], env=daemon.env(), capture_output=True, text=True, timeout=60)
    assert docker.returncode == 0, docker.stderr
    ours = sampan(daemon, *args).stdout
    # the same column names in the same order; widths follow the rows, and a relative time
    # ("59 seconds ago" / "About a minute ago") may cross a boundary between the two commands
    assert re.split(r"\s{2,}", ours.splitlines()[0].strip()) == re.split(r"\s{2,}", docker.stdout.splitlines()[0].strip())
    assert len(ours.splitlines()) == len(docker.stdout.splitlines())


def test_autostart_starts_a_daemon_and_waits_for_ping(tmp_path: Path) -> None:
    d = new_daemon(tmp_path)
    address = parse_host(d.url)
    messages: list[str] = []

    class Err:
        def write(self, text: str) -> None:
            messages.append(text)

        def flush(self) -> None:
            pass

    args = ["--data-root", str(d.data_root), "--exec-root", str(d.exec_root), "--pidfile", str(d.pidfile)]
    pid = autostart(address, stderr=Err(), daemon_args=args, log=str(tmp_path / "auto.log"))  # type: ignore[arg-type]
    try:
        assert pid > 0
        assert messages == [f"sampan: started sampand (pid {pid}), log in {tmp_path / 'auto.log'}\n"]
        assert os.getsid(pid) == pid  # detached in its own session
        assert d.request("GET", "/_ping").status == 200
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                os.waitpid(pid, os.WNOHANG)
            except (ProcessLookupError, ChildProcessError):
                break
            time.sleep(0.05)
        shutil.rmtree(d.dir, ignore_errors=True)
