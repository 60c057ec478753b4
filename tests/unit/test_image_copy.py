"""distribution/copy.py with in-memory source and destination: validation before any blob is
written, blobs skipped when present, abort on every failure; ocilayout index reading."""

from __future__ import annotations

import hashlib
import io
import json
from typing import BinaryIO

import pytest

from sampan.distribution import ocilayout
from sampan.distribution.copy import CopiedImage, Descriptor, SourceImage, copy
from sampan.errors import DigestMismatch, InvalidArgument


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


L1, L2 = b"layer-one", b"layer-two"
CONFIG = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(L1), sha(L2)]}}).encode()


class MemorySource:
    def __init__(self, blobs: dict[str, bytes], images: list[SourceImage]) -> None:
        self.blobs = blobs
        self._images = images
        self.opened: list[str] = []

    def images(self) -> list[SourceImage]:
        return self._images

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        self.opened.append(desc.digest)
        return io.BytesIO(self.blobs[desc.digest])


class MemoryDestination:
    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.put: list[str] = []
        self.images: list[SourceImage] = []
        self.aborted = False

    def has_blob(self, desc: Descriptor) -> bool:
        return desc.digest in self.present

    def put_blob(self, desc: Descriptor, src: BinaryIO, *, what: str) -> None:
        assert sha(src.read()) == desc.digest
        self.put.append(desc.digest)

    def put_image(self, image: SourceImage, config: bytes, diff_ids: list[str]) -> None:
        self.images.append(image)

    def finish(self) -> list[CopiedImage]:
        return [CopiedImage(i.config.digest, i.references) for i in self.images]

    def abort(self) -> None:
        self.aborted = True


def image(config: bytes = CONFIG, layers: tuple[bytes, ...] = (L1, L2)) -> SourceImage:
    return SourceImage(
        config=Descriptor("c", sha(config), len(config)),
        layers=[Descriptor("l", sha(x), len(x)) for x in layers],
        references=["docker.io/library/x:1"], where="x",
    )


def blobs() -> dict[str, bytes]:
    return {sha(x): x for x in (L1, L2, CONFIG)}


def test_copies_missing_blobs_then_images() -> None:
    dest = MemoryDestination(present={sha(L1)})
    out = copy(MemorySource(blobs(), [image()]), dest)
    assert dest.put == [sha(L2), sha(CONFIG)]
    assert out == [CopiedImage(sha(CONFIG), ["docker.io/library/x:1"])]
    assert not dest.aborted


def test_config_digest_mismatch_aborts_before_any_blob() -> None:
    data = blobs()
    data[sha(CONFIG)] = CONFIG + b" "
    dest = MemoryDestination(present=set())
    with pytest.raises(DigestMismatch, match="image config x"):
        copy(MemorySource(data, [image()]), dest)
    assert dest.aborted and dest.put == []


def test_layer_count_mismatch_refused() -> None:
    dest = MemoryDestination(present=set())
    with pytest.raises(InvalidArgument, match="config lists 2 layers"):
        copy(MemorySource(blobs(), [image(layers=(L1,))]), dest)
    assert dest.aborted


def test_oci_index_names_platforms_and_nesting() -> None:
    cfg = CONFIG
    manifest = json.dumps({"schemaVersion": 2, "config": {"mediaType": "c", "digest": sha(cfg), "size": len(cfg)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(L1), "size": len(L1)},
                                      {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(L2), "size": len(L2)}]}).encode()
    other = json.dumps({"schemaVersion": 2, "config": {"mediaType": "c", "digest": sha(b"{}"), "size": 2}, "layers": []}).encode()
    mt_manifest = "application/vnd.oci.image.manifest.v1+json"
    nested = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mt_manifest, "digest": sha(other), "size": len(other), "platform": {"os": "linux", "architecture": "s390x"}},
        {"mediaType": mt_manifest, "digest": sha(manifest), "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()
    store = {sha(manifest): manifest, sha(other): other, sha(nested): nested}
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested), "size": len(nested),
         "annotations": {"io.containerd.image.name": "quay.io/a/b:1"}},
        {"mediaType": mt_manifest, "digest": sha(manifest), "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "latest"}},
        {"mediaType": "application/vnd.in-toto+json", "digest": sha(b"x"), "size": 1},
    ]}).encode()
    images = ocilayout.images_from_index(index, lambda d: store[d.digest])
    assert len(images) == 1
    assert images[0].references == ["quay.io/a/b:1"]  # a bare "latest" names nothing
    assert images[0].manifest_digest == sha(manifest)
    assert [d.digest for d in images[0].layers] == [sha(L1), sha(L2)]
    with pytest.raises(InvalidArgument, match="names no image manifest"):
        ocilayout.images_from_index(b'{"manifests": []}', lambda d: b"")
    with pytest.raises(InvalidArgument, match="invalid digest"):
        ocilayout.images_from_index(b'{"manifests": [{"digest": "sha256:zz", "size": 1}]}', lambda d: b"")
