"""``DOCKER_BUILDKIT=0 docker build`` (the real docker CLI, legacy builder protocol) against
sampand: the tutorial's hello-docker example, the cache, --iidfile, -q, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixture import Daemon, cleanup, new_daemon, start_daemon

DOCKER = shutil.which("docker")
REPO = Path(__file__).resolve().parent.parent.parent
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.timeout(300),
    pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed"),
]


@pytest.fixture
def sampand(tmp_path: Path, busybox_rootfs_tar: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path / "d")
    try:
        r = docker(d, "import", "-c", 'CMD ["sh"]', str(busybox_rootfs_tar), "busybox:latest")
        assert r.returncode == 0, r.stderr
        yield d
    finally:
        cleanup(d)


def docker(d: Daemon, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**d.env(), "DOCKER_BUILDKIT": "0"}
    return subprocess.run([DOCKER or "docker", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120, stdin=None if stdin is not None else subprocess.DEVNULL)


def test_hello_docker_example(sampand: Daemon, tmp_path: Path) -> None:
    iid = tmp_path / "iid"
    r = docker(sampand, "build", "-t", "test-docker-image", "--iidfile", str(iid),
               str(REPO / "examples" / "hello-docker"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Step 1/10 : FROM busybox" in r.stdout
    assert "Successfully tagged test-docker-image:latest" in r.stdout
    image_id = iid.read_text().strip()
    assert f"Successfully built {image_id[7:19]}" in r.stdout
    r = docker(sampand, "image", "inspect", "test-docker-image")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)[0]
    assert info["Id"] == image_id
    c = info["Config"]
    assert c["Entrypoint"] == ["httpd", "-f", "-v", "-p", "8080", "-h", "/app/www"]
    assert c["Cmd"] is None  # ENTRYPOINT without CMD in the Dockerfile resets the base's CMD
    assert c["WorkingDir"] == "/app"
    assert "APP_HOME=/app" in c["Env"]
    assert c["ExposedPorts"] == {"8080/tcp": {}}
    assert c["Volumes"] == {"/tmp": {}}
    assert c["Labels"] == {"org.opencontainers.image.title": "hello-docker"}
    assert info["Author"] == "sampan"
    history = docker(sampand, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "test-docker-image")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert lines[0] == '/bin/sh -c #(nop)  ENTRYPOINT ["httpd" "-f" "-v" "-p" "8080" "-h" "/app/www"]'
    assert "/bin/sh -c chmod -R a+rX ./www" in lines
    # the file the tutorial's curl fetches is in the image, with its content
    out = tmp_path / "img.tar"
    assert docker(sampand, "save", "-o", str(out), "test-docker-image").returncode == 0
    # rebuilt: every step from the cache, same ID
    r = docker(sampand, "build", "-q", "-t", "test-docker-image", str(REPO / "examples" / "hello-docker"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == image_id


def test_build_errors_and_cache(sampand: Daemon, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("one\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY f /f\nRUN cat /f\n")
    r = docker(sampand, "build", "-t", "c1", str(ctx))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "one" in r.stdout
    (ctx / "f").touch()  # same content: still cached
    r = docker(sampand, "build", "-t", "c1", str(ctx))
    assert r.stdout.count("Using cache") == 2, r.stdout
    (ctx / "f").write_text("two\n")
    r = docker(sampand, "build", "-t", "c1", str(ctx))
    assert r.stdout.count("Using cache") == 0 and "two" in r.stdout, r.stdout
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    r = docker(sampand, "build", str(ctx))
    assert r.returncode != 0
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in r.stderr + r.stdout
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY nope /x\n")
    r = docker(sampand, "build", str(ctx))
    assert r.returncode != 0
    assert "COPY failed: file not found in build context" in r.stderr + r.stdout
    (ctx / "Dockerfile").write_text("FROM busybox\nRUNN x\n")
    r = docker(sampand, "build", str(ctx))
    assert r.returncode != 0
    assert "unknown instruction: RUNN" in r.stderr + r.stdout
    r = docker(sampand, "system", "df")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("Build Cache"))
    assert int(row.split()[2]) >= 4, r.stdout  # cached steps counted
    r = docker(sampand, "builder", "prune", "-f")
    assert r.returncode == 0, r.stderr
    assert "Total reclaimed space" in r.stdout


def test_tutorial_build_run_curl(tmp_path: Path, names: Any, busybox_rootfs_tar: Path) -> None:
    """The tutorial's acceptance: ``docker build -t test-docker-image .``, ``docker run -d
    --name user01 -p 6666:8080 test-docker-image``, ``curl localhost:6666/dockerfile``."""
    import ipaddress
    import time
    import urllib.request

    first = next(ipaddress.IPv4Network(names.subnet).subnets(new_prefix=26))
    d = new_daemon(tmp_path / "d", "--bridge", names.bridge, "--nft-table", names.nft_table,
                   "--bip", f"{next(first.hosts())}/26")
    port = names.free_port()
    try:
        d.start()
        assert docker(d, "import", "-c", 'CMD ["sh"]', str(busybox_rootfs_tar), "busybox:latest").returncode == 0
        r = docker(d, "build", "-t", "test-docker-image", str(REPO / "examples" / "hello-docker"))
        assert r.returncode == 0, r.stdout + r.stderr
        r = docker(d, "run", "-d", "--name", "user01", "-p", f"{port}:8080", "test-docker-image")
        assert r.returncode == 0, r.stderr
        body = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/dockerfile", timeout=2) as resp:
                    body = resp.read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"hello docker\n"
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                docker(d, "rm", "-f", "user01")
        finally:
            cleanup(d)
            time.sleep(0.5)  # veths of the container's namespace go asynchronously
