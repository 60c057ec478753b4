"""Real clients against a real sampand: docker-py and the docker CLI 28 (the oracle for shapes)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, daemon  # noqa: F401

pytestmark = pytest.mark.root

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def test_docker_py(daemon: Daemon, busybox_rootfs_tar: Path, tmp_path: Path) -> None:  # noqa: F811
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.url, version="auto", timeout=60)
    try:
        assert client.version()["ApiVersion"] == "1.51"
        assert client.ping() is True
        assert client.info()["Images"] == 0
        assert client.images.list() == []
        with open(busybox_rootfs_tar, "rb") as f:
            out = client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
        image_id = json.loads(out.strip().splitlines()[-1])["status"]

        image = client.images.get("busybox")
        assert image.id == image_id and image.tags == ["busybox:latest"]
        assert image.tag("localhost:5000/team/bb", "1") is True
        assert sorted(client.images.get(image_id).tags) == ["busybox:latest", "localhost:5000/team/bb:1"]
        assert [i.id for i in client.images.list()] == [image_id]
        assert [i.id for i in client.images.list(name="busybox")] == [image_id]

        archive = tmp_path / "bb.tar"
        with open(archive, "wb") as f:
            for chunk in image.save(named=True):
                f.write(chunk)
        by_name = b"".join(client.api.get_image("localhost:5000/team/bb:1"))
        assert len(by_name) > 1_000_000

        client.images.remove("localhost:5000/team/bb:1")
        client.images.remove("busybox", force=True)
        assert client.images.list() == []
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("busybox")

        loaded = client.images.load(archive.read_bytes())
        assert [i.id for i in loaded] == [image_id]
        assert client.images.get("busybox").id == image_id
        assert client.df()["Images"][0]["Id"] == image_id
        assert client.images.prune(filters={"dangling": False})["ImagesDeleted"]
        assert client.images.list() == []
    finally:
        client.close()


def docker(d: Daemon, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], env=d.env(), capture_output=True, text=True, timeout=60,
                          input=input.decode("latin-1") if input else None)


def ok(d: Daemon, *args: str) -> str:
    r = docker(d, *args)
    assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r.stdout


@pytest.mark.skipif(not Path(DOCKER).exists(), reason="docker CLI not installed")
def test_docker_cli(daemon: Daemon, busybox_rootfs_tar: Path, tmp_path: Path) -> None:  # noqa: F811
    version = ok(daemon, "version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}")
    assert version.split() == ["1.51", "1.24", "linux"]
    assert "Server:" in ok(daemon, "info")
    assert ok(daemon, "images").split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]

    image_id = ok(daemon, "import", "-c", 'CMD ["sh"]', "-m", "from test", str(busybox_rootfs_tar), "busybox").strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    rows = ok(daemon, "images").splitlines()
    assert re.match(r"busybox\s+latest\s+" + image_id[7:19] + r"\s+.+ago\s+2\.1\dMB$", rows[1]), rows

    ok(daemon, "tag", "busybox", "localhost:5000/team/bb:1")
    assert ok(daemon, "images", "-q").split() == [image_id[7:19]] * 2  # a row per tag, as docker
    assert len(ok(daemon, "images").splitlines()) == 3
    inspect = json.loads(ok(daemon, "image", "inspect", "busybox"))
    assert inspect[0]["Id"] == image_id and inspect[0]["Config"]["Cmd"] == ["sh"]
    assert ok(daemon, "image", "inspect", "-f", "{{.Comment}}", "busybox").strip() == "from test"
    history = ok(daemon, "history", "busybox").splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"] and image_id[7:19] in history[1]

    archive = tmp_path / "bb.tar"
    ok(daemon, "save", "-o", str(archive), "busybox", "localhost:5000/team/bb:1")
    assert archive.stat().st_size > 1_000_000
    out = ok(daemon, "rmi", "localhost:5000/team/bb:1", "busybox")
    assert "Untagged: localhost:5000/team/bb:1" in out and f"Deleted: {image_id}" in out
    missing = docker(daemon, "rmi", "busybox")
    assert missing.returncode == 1 and "No such image: busybox" in missing.stderr

    loaded = ok(daemon, "load", "-i", str(archive))
    assert "Loaded image: busybox:latest" in loaded and "Loaded image: localhost:5000/team/bb:1" in loaded
    assert ok(daemon, "image", "inspect", "-f", "{{.Id}}", "busybox").strip() == image_id

    df = ok(daemon, "system", "df").splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "1", "0"]

    ok(daemon, "rmi", "localhost:5000/team/bb:1")
    ok(daemon, "tag", "busybox", "other")
    ok(daemon, "rmi", "busybox", "other")
    ok(daemon, "load", "-i", str(archive))
    assert "Total reclaimed space: 0B" in ok(daemon, "image", "prune", "-f")
    pruned = ok(daemon, "image", "prune", "-a", "-f")
    assert f"deleted: {image_id}" in pruned and "Total reclaimed space" in pruned
    assert ok(daemon, "images", "-q") == ""

    events = ok(daemon, "events", "--since", "0", "--until", str(int(time.time()) + 1),
                "--filter", "type=image", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}").splitlines()
    assert f"image import {image_id}" in events and f"image load {image_id}" in events
    assert f"image tag {image_id}" in events and f"image delete {image_id}" in events
