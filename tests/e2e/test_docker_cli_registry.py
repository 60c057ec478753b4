"""The real docker CLI through sampand against ``sampan registry serve`` with Basic auth:
``docker login``, ``docker push``, ``docker pull``, ``docker logout``, and their failures."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.daemon_fixture import Daemon, cleanup, start_daemon
from tests.integration.registry_harness import Server, start_server

DOCKER = shutil.which("docker")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(DOCKER is None, reason="the docker CLI is not installed"),
]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Server]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("carol:" + bcrypt.hashpw(b"pw-carol", bcrypt.gensalt(4)).decode() + "\n")
    server = start_server(tmp_path / "reg", config={"auth": {"htpasswd": {"path": str(htpasswd), "realm": "e2e"}}})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sampand(tmp_path: Path) -> Iterator[Daemon]:
    d = start_daemon(tmp_path / "d")
    try:
        yield d
    finally:
        cleanup(d)


def docker(d: Daemon, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER or "docker", *args], env=d.env(), input=stdin, capture_output=True,
                          text=True, timeout=120, stdin=None if stdin is not None else subprocess.DEVNULL)


def test_docker_login_push_pull(sampand: Daemon, registry: Server, busybox_rootfs_tar: Path) -> None:
    name = f"{registry.addr}/e2e/busybox:v1"
    r = docker(sampand, "import", "-c", 'CMD ["sh"]', str(busybox_rootfs_tar), name)
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.strip()

    r = docker(sampand, "push", name)
    assert r.returncode != 0 and "authentication required" in r.stderr + r.stdout, r.stderr

    r = docker(sampand, "login", "-u", "carol", "--password-stdin", registry.addr, stdin="wrong\n")
    assert r.returncode != 0, r.stdout
    r = docker(sampand, "login", "-u", "carol", "--password-stdin", registry.addr, stdin="pw-carol\n")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr

    r = docker(sampand, "push", name)
    assert r.returncode == 0, r.stderr
    assert "Pushed" in r.stdout and "v1: digest: sha256:" in r.stdout, r.stdout
    digest = r.stdout.split("digest: ")[1].split()[0]

    r = docker(sampand, "rmi", name)
    assert r.returncode == 0, r.stderr
    r = docker(sampand, "pull", name)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {digest}" in r.stdout and f"Status: Downloaded newer image for {name}" in r.stdout
    r = docker(sampand, "image", "inspect", "--format", "{{.Id}}", name)
    assert r.stdout.strip() == image_id
    r = docker(sampand, "pull", name)
    assert "Image is up to date" in r.stdout, r.stdout

    r = docker(sampand, "pull", f"{registry.addr}/e2e/busybox:missing")
    assert r.returncode != 0 and "not found" in r.stderr, r.stderr

    r = docker(sampand, "logout", registry.addr)
    assert r.returncode == 0, r.stderr
    r = docker(sampand, "pull", name)
    assert r.returncode != 0 and "pull access denied" in r.stderr, r.stderr


def test_docker_py_login_push_pull(sampand: Daemon, registry: Server, busybox_rootfs_tar: Path) -> None:
    import docker

    client = docker.DockerClient(base_url=sampand.url, version="1.43")
    try:
        name = f"{registry.addr}/py/busybox"
        with open(busybox_rootfs_tar, "rb") as f:
            client.api.import_image_from_data(f.read(), repository=name, tag="1")
        answer = client.login(username="carol", password="pw-carol", registry=registry.addr)
        assert answer["Status"] == "Login Succeeded"
        lines = list(client.api.push(name, tag="1", stream=True, decode=True))
        assert [m for m in lines if "aux" in m] and not [m for m in lines if "error" in m], lines
        client.images.remove(f"{name}:1")
        image = client.images.pull(name, tag="1")
        assert f"{name}:1" in image.tags
    finally:
        client.close()
