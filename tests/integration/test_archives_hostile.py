"""Hostile image archives: manifest paths outside the archive, diff_id mismatch, truncated gzip
layer, bad blobs. Each is refused with an error naming the path or layer, and the store is
unchanged afterwards (images, content/, layers/, tmp/)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.errors import DigestMismatch, InvalidArgument, UnsafeArchiveEntry
from sampan.image.store import ImageStore
from tests.integration.test_archives_load import (
    BASE,
    TOP,
    ArchImage,
    docker_archive_v1,
    load,
    oci_archive,
    open_store,
    sha,
    store_state,
    tar_bytes,
)

pytestmark = pytest.mark.root

GOOD = ArchImage([BASE], tags=["good:1"])


@pytest.fixture
def store(data_root: Path) -> Iterator[ImageStore]:
    s = open_store(data_root)
    load(s, docker_archive_v1([GOOD]))  # something already there, that must stay intact
    yield s
    s.db.close()


def archive(config_path: str, layer_paths: list[str], extra: list[tuple[str, bytes | tuple[str, str]]]) -> bytes:
    img = ArchImage([BASE], tags=["bad:1"])
    manifest = [{"Config": config_path, "RepoTags": ["bad:1"], "Layers": layer_paths}]
    return tar_bytes([("cfg.json", img.config), ("l/layer.tar", BASE), *extra,
                      ("manifest.json", json.dumps(manifest).encode())])


def refused(store: ImageStore, data: bytes, exc: type[Exception], *needles: str) -> None:
    before = store_state(store)
    with pytest.raises(exc) as info:
        load(store, data)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    assert "\n" not in str(info.value)
    assert store_state(store) == before
    assert store.get("good:1").id == GOOD.id


@pytest.mark.parametrize(
    ("config", "layers", "extra", "needle"),
    [
        ("../cfg.json", ["l/layer.tar"], [], "'../cfg.json'"),
        ("/etc/passwd", ["l/layer.tar"], [], "'/etc/passwd'"),
        ("cfg.json", ["l/../../l/layer.tar"], [], "'l/../../l/layer.tar'"),
        ("cfg.json", ["/l/layer.tar"], [], "'/l/layer.tar'"),
        ("up/cfg.json", ["l/layer.tar"], [("up", ("symlink", ".."))], "'up/cfg.json'"),
        ("cfg.json", ["esc/layer.tar"], [("esc", ("symlink", "/etc"))], "'esc/layer.tar'"),
        ("cfg.json", ["a/layer.tar"], [("a", ("symlink", "b")), ("b", ("symlink", "../../x"))], "'a/layer.tar'"),
        ("cfg.json", ["loop/x"], [("loop", ("symlink", "loop"))], "'loop/x'"),
    ],
)
def test_manifest_paths_outside_the_archive(store: ImageStore, config: str, layers: list[str],
                                            extra: list[tuple[str, bytes | tuple[str, str]]], needle: str) -> None:
    refused(store, archive(config, layers, extra), UnsafeArchiveEntry, "manifest.json", needle)


def test_symlinks_inside_the_archive_are_followed(store: ImageStore) -> None:
    data = archive("cfg.json", ["dup/layer.tar"], [("dup/", b""), ("dup/layer.tar", ("symlink", "../l/layer.tar"))])
    assert load(store, data) == ["Loaded image: bad:1"]


def test_missing_member_named(store: ImageStore) -> None:
    refused(store, archive("cfg.json", ["nope/layer.tar"], []), InvalidArgument, "'nope/layer.tar'")


def test_diff_id_mismatch_names_the_layer(store: ImageStore) -> None:
    img = ArchImage([BASE], tags=["bad:1"])
    other = TOP  # the layer file holds TOP while the config announces BASE
    manifest = [{"Config": "cfg.json", "RepoTags": ["bad:1"], "Layers": ["l1/layer.tar"]}]
    data = tar_bytes([("cfg.json", img.config), ("l1/layer.tar", other), ("manifest.json", json.dumps(manifest).encode())])
    refused(store, data, DigestMismatch, "l1/layer.tar", sha(BASE))


def test_truncated_gzip_layer(store: ImageStore) -> None:
    big = bytes(range(256)) * 4096 * 4  # 4 MiB of data, so the member is not kept in memory
    content = tar_bytes([("data.bin", big)])
    img = ArchImage([content], tags=["bad:1"])
    blob = gzip.compress(content, mtime=0)[:-4000]
    manifest = [{"Config": "cfg.json", "RepoTags": ["bad:1"], "Layers": ["l1/layer.tar"]}]
    data = tar_bytes([("cfg.json", img.config), ("l1/layer.tar", blob), ("manifest.json", json.dumps(manifest).encode())])
    refused(store, data, InvalidArgument, "l1/layer.tar")


def test_oci_blob_not_matching_its_name(store: ImageStore) -> None:
    data = oci_archive([ArchImage([BASE, TOP], tags=["bad:1"])], gzip_layers=False)
    # rewrite: put TOP's bytes under BASE's blob name
    tampered = data.replace(BASE, TOP[: len(BASE)].ljust(len(BASE), b"\0")) if len(TOP) >= len(BASE) else None
    if tampered is None:
        pytest.skip("layer sizes do not allow the in-place swap")
    refused(store, tampered, DigestMismatch, f"blobs/sha256/{sha(BASE)[7:]}")


def test_layer_count_mismatch_and_bad_json(store: ImageStore) -> None:
    img = ArchImage([BASE, TOP], tags=["bad:1"])
    manifest = [{"Config": "cfg.json", "RepoTags": ["bad:1"], "Layers": ["l/layer.tar"]}]
    data = tar_bytes([("cfg.json", img.config), ("l/layer.tar", BASE), ("manifest.json", json.dumps(manifest).encode())])
    refused(store, data, InvalidArgument, "2 layers")
    refused(store, tar_bytes([("manifest.json", b"{nope")]), InvalidArgument, "manifest.json")
    refused(store, tar_bytes([("hello", b"x")]), InvalidArgument, "neither manifest.json nor index.json")
    refused(store, b"\x1f\x8b\x08\x00garbage", InvalidArgument)
    refused(store, docker_archive_v1([img])[:3000], InvalidArgument, "truncated")


def test_bad_repo_tag_refused(store: ImageStore) -> None:
    img = ArchImage([BASE], tags=["Bad:Tag"])
    refused(store, docker_archive_v1([img]), InvalidArgument, "Bad")
