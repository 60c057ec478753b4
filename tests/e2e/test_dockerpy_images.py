"""sampan's port of docker-py's api_image_test.py and models_images_test.py, run with docker-py
against a real sampand; pulls and pushes go to a ``sampan registry serve`` on loopback (upstream
pulls hello-world and alpine from Docker Hub), imports from a URL to an HTTP server on loopback.

Written for sampan from reading docker-py's tests (tests/integration/ in docker/docker-py); the
tests not ported are listed with their reason in docs/docker-py-tests.md.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401
from tests.integration.registry_harness import Server, start_server

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

BUSYBOX = "busybox"


def models(client: Any) -> Any:
    """A docker-py ``DockerClient`` sharing the test's ``APIClient`` (same daemon)."""
    dc = docker.DockerClient.__new__(docker.DockerClient)
    dc.api = client
    return dc


def ids(images: list[Any]) -> list[str]:
    return [i.id for i in images]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("registry") / "reg")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hello(client: Any, registry: Server) -> str:
    """Upstream's hello-world: a small image in the loopback registry (busybox plus one layer,
    committed and pushed), removed locally so that a test can pull it."""
    cid = client.create_container(BUSYBOX, ["sh", "-c", "echo hello > /hello"])["Id"]
    client.start(cid)
    client.wait(cid)
    ref = f"{registry.addr}/library/hello-world"
    client.commit(cid, repository=ref, tag="latest", changes=['CMD ["cat", "/hello"]'])
    for tag in ("latest", "v2"):
        client.tag(f"{ref}:latest", ref, tag)
        for line in client.push(ref, tag=tag, stream=True, decode=True):
            assert "error" not in line, line
    client.remove_container(cid)
    for tag in ("latest", "v2"):
        client.remove_image(f"{ref}:{tag}")
    return ref


def dummy_tar(n_bytes: int) -> bytes:
    """Upstream's tar of one sparse file ``testdata`` of n_bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("testdata")
        info.size = n_bytes
        tar.addfile(info, io.BytesIO(b"\0" * (n_bytes - 1) + b"A"))
    return buf.getvalue()


def last_status(statuses: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(statuses.splitlines()[-1])
    assert "error" not in result, result
    assert "status" in result
    return result


# ------------------------------------------------------------------ ListImagesTest


def test_images(client: Any) -> None:
    res = client.images(all=True)
    assert "Id" in res[0] and "Created" in res[0] and "RepoTags" in res[0]
    assert len({img["Id"] for img in res}) == client.info()["Images"]
    assert isinstance(client.images(quiet=True)[0], str)


# ------------------------------------------------------------------ PullImageTest, PruneImagesTest


def test_pull(client: Any, hello: str) -> None:
    res = client.pull(hello)
    assert isinstance(res, str)
    assert len(client.images(hello)) >= 1
    assert "Id" in client.inspect_image(hello)


def test_pull_streaming(client: Any, hello: str) -> None:
    chunks = list(client.pull(hello, stream=True, decode=True))
    assert chunks and all(isinstance(c, dict) for c in chunks)
    assert len(client.images(hello)) >= 1
    assert "Id" in client.inspect_image(hello)


def test_pull_invalid_platform(client: Any, hello: str) -> None:
    with pytest.raises(docker.errors.APIError) as excinfo:
        client.pull(hello, platform="foobar")
    assert excinfo.value.is_error()
    assert "unknown operating system" in excinfo.exconly() or "invalid platform" in excinfo.exconly()


def test_prune_images(client: Any, hello: str) -> None:
    client.create_container(BUSYBOX, ["sleep", "9999"])  # keeps busybox from being pruned
    client.pull(hello, tag="latest")
    img_id = client.inspect_image(hello)["Id"]
    result = client.prune_images()
    assert img_id not in [img.get("Deleted") for img in result.get("ImagesDeleted") or []]
    result = client.prune_images({"dangling": False})
    assert result["SpaceReclaimed"] > 0
    assert f"{hello}:latest" in [img.get("Untagged") for img in result["ImagesDeleted"]]
    assert img_id in [img.get("Deleted") for img in result["ImagesDeleted"]]
    assert client.images(BUSYBOX)


# ------------------------------------------------------------------ CommitTest, RemoveImageTest


def test_commit(client: Any) -> None:
    cid = client.create_container(BUSYBOX, ["touch", "/test"])["Id"]
    client.start(cid)
    img_id = client.commit(cid)["Id"]
    img = client.inspect_image(img_id)
    assert img["Parent"] == client.inspect_image(BUSYBOX)["Id"]
    img_id = client.commit(cid, changes=["EXPOSE 8000", 'CMD ["bash"]'])["Id"]
    img = client.inspect_image(img_id)
    assert "8000/tcp" in img["Config"]["ExposedPorts"] and img["Config"]["Cmd"] == ["bash"]


def test_remove(client: Any) -> None:
    cid = client.create_container(BUSYBOX, ["touch", "/test"])["Id"]
    client.start(cid)
    img_id = client.commit(cid)["Id"]
    logs = client.remove_image(img_id, force=True)
    assert {"Deleted": img_id} in logs
    assert not [x for x in client.images(all=True) if x["Id"].startswith(img_id)]


# ------------------------------------------------------------------ ImportImageTest


def test_import_from_bytes_file_and_stream(client: Any, tmp_path: Path) -> None:
    last_status(client.import_image_from_data(dummy_tar(500), repository="test/import-from-bytes"))
    tar_file = tmp_path / "dummy.tar"
    tar_file.write_bytes(dummy_tar(512 * 1024))
    last_status(client.import_image_from_file(str(tar_file), repository="test/import-from-file"))
    with open(tar_file, "rb") as stream:
        img_id = last_status(client.import_image(src=stream, repository="test/import-from-stream"))["status"]
    assert client.inspect_image(img_id)["RepoTags"] == ["test/import-from-stream:latest"]


def test_import_with_changes(client: Any, tmp_path: Path) -> None:
    changes = ["USER foobar", 'CMD ["echo"]']
    img_id = last_status(client.import_image_from_data(dummy_tar(500), repository="test/import-from-bytes",
                                                       changes=changes))["status"]
    tar_file = tmp_path / "dummy.tar"
    tar_file.write_bytes(dummy_tar(512 * 1024))
    img_id2 = last_status(client.import_image(src=str(tar_file), repository="test/import-from-file",
                                              changes=changes))["status"]
    for i in (img_id, img_id2):
        config = client.inspect_image(i)["Config"]
        assert config["Cmd"] == ["echo"] and config["User"] == "foobar"


@contextlib.contextmanager
def http_file_server(data: bytes) -> Iterator[str]:
    """Upstream's temporary HTTP server, on 127.0.0.1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dummy.tar"
    finally:
        server.shutdown()
        server.server_close()


def test_import_from_url(client: Any) -> None:
    with http_file_server(dummy_tar(10240)) as url:
        img_id = last_status(client.import_image(src=url, repository="test/import-from-url"))["status"]
    assert client.inspect_image(img_id)["RepoTags"] == ["test/import-from-url:latest"]


# ------------------------------------------------------------------ SaveLoadImagesTest, get/load


def test_get_image_load_image(client: Any) -> None:
    with tempfile.TemporaryFile() as f:
        for chunk in client.get_image(BUSYBOX):
            f.write(chunk)
        f.seek(0)
        result = list(client.load_image(f.read()))
    assert {"stream": f"Loaded image: {BUSYBOX}:latest\n"} in result or \
        any(d.get("stream") == f"Loaded image: {BUSYBOX}:latest\n" for d in result)


def test_get_load_pulled_image(client: Any, hello: str) -> None:
    """test_get_load_image: save and load an image that came from a registry."""
    client.pull(hello, tag="latest")
    output = client.load_image(b"".join(client.get_image(f"{hello}:latest")))
    assert any(f"Loaded image: {hello}:latest" in line.get("stream", "") for line in output)


# ------------------------------------------------------------------ InspectDistributionTest


def test_inspect_distribution(client: Any, hello: str) -> None:
    data = client.inspect_distribution(f"{hello}:latest")
    assert data["Descriptor"]["digest"].startswith("sha256:")
    assert "Platforms" in data
    assert {"os": "linux", "architecture": "amd64"} in [
        {k: p[k] for k in ("os", "architecture")} for p in data["Platforms"]]


# ------------------------------------------------------------------ models_images_test.py


def test_models_list_pull_tag_remove(client: Any, hello: str) -> None:
    dc = models(client)
    image = dc.images.pull(hello, tag="latest")
    assert f"{hello}:latest" in image.attrs["RepoTags"]
    assert image.id in ids(dc.images.list())
    assert image.id in ids(dc.images.list(hello)) and image.id in ids(dc.images.list(f"{hello}:latest"))
    v2 = dc.images.pull(hello, tag="v2")
    assert f"{hello}:v2" in v2.attrs["RepoTags"]
    repo, tag = "dockersdk.tests.images.test_tag", "some-tag"
    assert image.tag(repo, tag) is True
    assert image.id in ids(dc.images.list(repo)) and image.id in ids(dc.images.list(f"{repo}:{tag}"))
    dc.images.remove(f"{repo}:{tag}")
    assert image.id not in ids(dc.images.list(repo))
    assert image.id in ids(dc.images.list(f"{hello}:latest"))


def test_models_pull_with_sha(client: Any, hello: str) -> None:
    dc = models(client)
    digest = dc.images.pull(hello, tag="latest").attrs["RepoDigests"][0].split("@")[1]
    client.remove_image(f"{hello}:latest")
    image = dc.images.pull(f"{hello}@{digest}")
    assert f"{hello}@{digest}" in image.attrs["RepoDigests"]


def test_models_pull_multiple(client: Any, hello: str) -> None:
    images = models(client).images.pull(hello, all_tags=True)
    assert len(images) >= 1
    assert any(f"{hello}:latest" in img.attrs["RepoTags"] for img in images)
    assert any(f"{hello}:v2" in img.attrs["RepoTags"] for img in images)


def test_models_push(client: Any, hello: str, registry: Server) -> None:
    """Not in upstream's models tests (they have no registry): push through the models API."""
    dc = models(client)
    image = dc.images.get(BUSYBOX)
    ref = f"{registry.addr}/dockerpy/busybox"
    assert image.tag(ref, "pushed")
    lines = list(dc.images.push(ref, tag="pushed", stream=True, decode=True))
    assert any("Digest" in (line.get("aux") or {}) for line in lines), lines
    assert registry.request("GET", "/v2/dockerpy/busybox/manifests/pushed",
                            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                               "application/vnd.oci.image.manifest.v1+json"}).status == 200


def test_models_load_error_and_save_load(client: Any) -> None:
    dc = models(client)
    with pytest.raises(docker.errors.ImageLoadError):
        dc.images.load("abc")
    image = dc.images.get(BUSYBOX)
    result = dc.images.load(b"".join(image.save()))
    assert len(result) == 1 and result[0].id == image.id


def test_models_save_and_load_repo_name(client: Any) -> None:
    dc = models(client)
    image = dc.images.get(BUSYBOX)
    additional_tag = "dockerpy-save-load"
    image.tag(additional_tag)
    image.reload()
    data = b"".join(image.save(named=f"{additional_tag}:latest"))
    dc.images.remove(additional_tag, force=True)
    result = dc.images.load(data)
    assert len(result) == 1 and result[0].id == image.id
    assert f"{additional_tag}:latest" in result[0].tags
    with pytest.raises(docker.errors.InvalidArgument):  # docker-py's own check
        image.save(named="sakuya/izayoi")


def test_models_history(client: Any) -> None:
    """Image.history (not in upstream's tests): a commit adds one entry on top of busybox's."""
    dc = models(client)
    cid = client.create_container(BUSYBOX, ["touch", "/x"])["Id"]
    client.start(cid)
    client.wait(cid)
    image = dc.containers.get(cid).commit(repository="dockerpy-history", message="touched")
    history = image.history()
    assert history[0]["Id"] == image.id and history[0]["Comment"] == "touched"
    assert len(history) == len(dc.images.get(BUSYBOX).history()) + 1


def test_run_with_image_that_does_not_exist(client: Any, registry: Server) -> None:
    """models_containers_test.py test_run_with_image_that_does_not_exist: run pulls the missing
    image, the (loopback) registry has no such manifest.  Upstream expects ImageNotFound from
    Docker Hub's "pull access denied"; a registry's MANIFEST_UNKNOWN is dockerd's 404 "manifest
    for ... not found" (docker-py's NotFound), which sampan gives too."""
    with pytest.raises(docker.errors.NotFound) as excinfo:
        models(client).containers.run(f"{registry.addr}/dockerpy/nosuchimage:latest")
    assert f"manifest for {registry.addr}/dockerpy/nosuchimage:latest not found" in str(excinfo.value)
