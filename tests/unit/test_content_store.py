"""The content store publishes a blob only after its digest is verified."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sampan.errors import BlobNotFound, DigestMismatch, InvalidArgument
from sampan.oci import digest as dg
from sampan.storage.content import ContentStore


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content", tmp_path / "tmp")


def test_put_and_read_back(store: ContentStore) -> None:
    d = store.put_bytes(b"hello")
    assert d == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.read_bytes(d) == b"hello"
    assert store.size(d) == 5
    assert list(store.walk()) == [d]
    assert not any(store.tmp.iterdir())


def test_wrong_digest_publishes_nothing(store: ContentStore) -> None:
    wrong = dg.of_bytes(b"other")
    with pytest.raises(DigestMismatch, match="expected sha256:"):
        store.put_bytes(b"hello", expected=wrong, what="layer x")
    assert not store.exists(wrong)
    assert list(store.walk()) == []
    assert not any(store.tmp.iterdir())


def test_wrong_size_publishes_nothing(store: ContentStore) -> None:
    with store.writer(size=10, what="config") as w, pytest.raises(InvalidArgument, match="size mismatch"):
        w.write(b"short")
        w.commit()
    assert list(store.walk()) == []
    assert not any(store.tmp.iterdir())


def test_abandoned_writer_leaves_nothing(store: ContentStore) -> None:
    with store.writer() as w:
        w.write(b"partial")
    assert list(store.walk()) == []
    assert not any(store.tmp.iterdir())


def test_adopt_and_delete(store: ContentStore) -> None:
    f = store.tmp / "spooled"
    f.write_bytes(b"x" * 1000)
    d = store.adopt(f)
    assert store.exists(d) and not f.exists()
    assert store.delete(d) == 1000
    assert store.delete(d) == 0
    with pytest.raises(BlobNotFound):
        store.open(d)


def test_chain_ids_follow_the_oci_definition() -> None:
    a, b = dg.of_bytes(b"a"), dg.of_bytes(b"b")
    assert dg.chain_ids([a, b]) == [a, dg.of_bytes(f"{a} {b}".encode())]


@pytest.mark.parametrize("bad", ["sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, ""])
def test_invalid_digests_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        dg.validate(bad)
