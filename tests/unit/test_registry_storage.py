"""The registry's storage directory, manifest parsing, configuration and error bodies (no server)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from sampan import errors
from sampan.distribution.server import config, manifest
from sampan.distribution.server.errors import RegistryError, from_sampan
from sampan.distribution.server.storage import RegistryStorage, check_name, page


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("name", ["a", "library/busybox", "a-b/c.d/e__f", "x0/y--z"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "a/", "/a", "a//b", "a/../b", "-a", "a_", "a" * 256, "_catalog"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(RegistryError) as info:
        check_name(name)
    assert info.value.code == "NAME_INVALID"


@pytest.mark.parametrize(
    ("n", "last", "items", "more"),
    [(None, "", ["a", "b", "c"], False), (2, "", ["a", "b"], True), (2, "b", ["c"], False),
     (0, "", [], True), (5, "c", [], False), (1, "aa", ["b"], True)],
)
def test_page(n: int | None, last: str, items: list[str], more: bool) -> None:
    assert page(["a", "b", "c"], n, last) == (items, more)


def test_concurrent_uploads_of_one_blob(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    data = b"same bytes" * 100000
    results: list[str] = []

    def upload(repo: str) -> None:
        up = storage.new_upload(repo)
        for i in range(0, len(data), 65536):
            up.write(data[i:i + 65536])
        results.append(storage.finish_upload(up, sha(data)))

    threads = [threading.Thread(target=upload, args=(f"r{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [sha(data)] * 6
    assert storage.content.read_bytes(sha(data)) == data
    assert all(storage.blob_visible(f"r{i}", sha(data)) for i in range(6))
    assert [p.name for p in storage.uploads_dir.iterdir()] == ["_tmp"]  # no session left behind


def test_upload_state_survives_a_restart(tmp_path: Path) -> None:
    up = RegistryStorage(tmp_path).new_upload("repo")
    up.write(b"first half, ")
    again = RegistryStorage(tmp_path)  # a new process: no in-memory state
    resumed = again.get_upload("repo", up.id)
    assert resumed.size == 12
    resumed.write(b"second half")
    assert again.finish_upload(resumed, sha(b"first half, second half")) == sha(b"first half, second half")
    with pytest.raises(RegistryError) as info:
        again.get_upload("other", up.id)
    assert info.value.code == "BLOB_UPLOAD_UNKNOWN"


def test_bad_digest_leaves_nothing(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    up = storage.new_upload("repo")
    up.write(b"content")
    with pytest.raises(RegistryError) as info:
        storage.finish_upload(up, sha(b"other"))
    assert info.value.code == "DIGEST_INVALID"
    assert list(storage.content.walk()) == []
    assert not up.dir.exists()


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"[]", "", "not a JSON object"),
        (b'{"schemaVersion": 1}', "", "schemaVersion"),
        (b'{"schemaVersion": 2, "config": {"digest": "sha256:x", "size": 1}}', "", "invalid digest"),
        (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}', "", "manifests list"),
        (b'{"schemaVersion": 2, "mediaType": "a/b"}', "a/c", "does not match"),
    ],
)
def test_manifest_parse_errors(body: bytes, content_type: str, fragment: str) -> None:
    with pytest.raises(RegistryError, match=fragment) as info:
        manifest.parse(body, content_type)
    assert info.value.code == "MANIFEST_INVALID"


def test_manifest_parse_artifact() -> None:
    d = sha(b"{}")
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/x-config", "digest": d, "size": 2},
           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": d, "size": 2}],
           "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 9}}
    info = manifest.parse(json.dumps(doc).encode())
    assert info.subject is not None and info.subject.digest == d
    assert [b.media_type for b in info.blobs()] == ["application/x-config"]  # foreign layers are not required
    assert info.referrer_descriptor(d, 5)["artifactType"] == "application/x-config"


def test_config_build(tmp_path: Path) -> None:
    cfg = config.build({"addr": "0.0.0.0:6000", "storage": "data", "readonly": True,
                        "tls": {"certificate": "c.pem", "key": "k.pem"}}, base=tmp_path)
    assert (cfg.host, cfg.port, cfg.storage, cfg.readonly) == ("0.0.0.0", 6000, tmp_path / "data", True)
    assert cfg.tls_key == tmp_path / "k.pem"
    cfg = config.build({"addr": "0.0.0.0:6000"}, base=tmp_path, addr="127.0.0.1:7000", storage="/s")
    assert (cfg.host, cfg.port, str(cfg.storage)) == ("127.0.0.1", 7000, "/s")
    for doc, field in [({"addr": "nope"}, "addr"), ({"bogus": 1}, "bogus"), ({"tls": {"key": "k"}}, "tls"),
                       ({"auth": {"ldap": {}}}, "auth"), ({"auth": {"token": {"realm": "r"}}}, "auth.token.service"),
                       ({"auth": {"htpasswd": {"path": "missing"}}}, "auth.htpasswd.path")]:
        with pytest.raises(errors.InvalidConfig) as info:
            config.build(doc, base=tmp_path)
        assert info.value.field == field


def test_error_bodies_and_mapping() -> None:
    exc = RegistryError("BLOB_UNKNOWN", detail={"digest": "sha256:x"})
    assert exc.status == 404
    assert json.loads(exc.body()) == {"errors": [
        {"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": {"digest": "sha256:x"}}]}
    with pytest.raises(ValueError):
        RegistryError("NOT_A_CODE")
    cases = [
        (errors.DigestMismatch("blob", "sha256:a", "sha256:b"), "DIGEST_INVALID", 400),
        (errors.BlobNotFound("sha256:a"), "BLOB_UNKNOWN", 404),
        (errors.Unauthorized("no"), "UNAUTHORIZED", 401),
        (errors.PermissionDenied("no"), "DENIED", 403),
        (errors.NotImplementedFeature("no"), "UNSUPPORTED", 405),
        (errors.Unavailable("disk full"), "UNAVAILABLE", 503),
        (errors.Internal("bug"), "INTERNAL", 500),
    ]
    for err, code, status in cases:
        mapped = from_sampan(err)
        assert (mapped.code, mapped.status) == (code, status)
