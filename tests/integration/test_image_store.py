"""The image store on a real snapshotter: import, lookups, tags, Docker's rmi rules, layer and
blob refcounts derived from the database, prune, disk usage, reconcile."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan.errors import ImageInUse, InvalidArgument, InvalidReference, NoSuchImage
from sampan.image.store import ImageStore
from sampan.storage.db import Database
from tests.integration.test_archives_load import (
    BASE,
    TOP,
    ArchImage,
    docker_archive_v1,
    layer,
    load,
    sha,
    store_state,
)

pytestmark = pytest.mark.root

THIRD = layer({"third": b"3" * 5000})


@pytest.fixture
def store(data_root: Path) -> Iterator[ImageStore]:
    s = ImageStore.open(data_root, db=Database.open(data_root / "sampan.db"))
    yield s
    s.db.close()


def test_import_with_changes_and_lookups(store: ImageStore) -> None:
    image = store.import_rootfs(
        io.BytesIO(BASE), reference="local/base:v1",
        changes=['CMD ["sh"]', "ENV A=1", "LABEL k=v", "EXPOSE 80"], message="made here",
    )
    assert image.repo_tags == ["local/base:v1"]
    assert image.diff_ids == [sha(BASE)] and image.size == len(BASE)
    assert image.config["config"] == {"Cmd": ["sh"], "Env": ["A=1"], "Labels": {"k": "v"},
                                      "ExposedPorts": {"80/tcp": {}}}
    assert image.comment == "made here" and image.config["os"] == "linux"
    assert image.layers[0].blob == sha(BASE)  # stored as given (uncompressed here)
    hexid = image.id[7:]
    for name in ("local/base:v1", "docker.io/local/base:v1", image.id, hexid, hexid[:12], "sha256:" + hexid[:5]):
        assert store.get(name).id == image.id, name
    with pytest.raises(NoSuchImage, match="No such image: nothere:latest"):
        store.get("nothere:latest")
    with pytest.raises(InvalidReference):
        store.get("Bad Name")
    (entry,) = store.history("local/base:v1")
    assert (entry.id, entry.size, entry.comment, entry.tags) == (image.id, len(BASE), "made here", ["local/base:v1"])


def test_import_gzip_stores_the_blob_as_given(store: ImageStore) -> None:
    import gzip

    blob = gzip.compress(TOP, mtime=0)
    image = store.import_rootfs(io.BytesIO(blob))
    assert image.diff_ids == [sha(TOP)]
    assert image.layers[0].blob == sha(blob)
    assert image.layers[0].media_type.endswith("+gzip")
    assert image.repo_tags == [] and image.comment == "Imported from -"


def test_bad_import_leaves_nothing(store: ImageStore) -> None:
    before = store_state(store)
    with pytest.raises(InvalidArgument):
        store.import_rootfs(io.BytesIO(b"\x1f\x8b\x08\x00" + b"x" * 100))
    with pytest.raises(InvalidArgument):
        store.import_rootfs(io.BytesIO(BASE), changes=["RUN rm -rf /"])
    assert store_state(store) == before


def test_tag_and_rmi_rules(store: ImageStore) -> None:
    a = ArchImage([BASE], tags=["a:1"])
    load(store, docker_archive_v1([a]))
    store.tag("a:1", "a:2")
    store.tag(a.id, "other/b")
    with pytest.raises(InvalidArgument):
        store.tag("a:1", "a@sha256:" + "0" * 64)
    assert store.get("a:1").repo_tags == ["a:1", "a:2", "other/b:latest"]
    with pytest.raises(ImageInUse, match=rf"unable to delete {a.id[7:19]} \(must be forced\) - image is referenced in multiple repositories"):
        store.remove(a.id)
    assert store.remove("a:2") == [{"Untagged": "a:2"}]
    assert store.remove("other/b") == [{"Untagged": "other/b:latest"}]
    # one tag left: removal by ID untags it and deletes the image and its layer
    assert store.remove(a.id[7:19]) == [{"Untagged": "a:1"}, {"Deleted": a.id}, {"Deleted": sha(BASE)}]
    assert store_state(store) == ([], [], [], [])
    with pytest.raises(NoSuchImage):
        store.remove("a:1")


def test_force_removes_every_tag(store: ImageStore) -> None:
    a = ArchImage([BASE], tags=["a:1", "b:1"])
    load(store, docker_archive_v1([a]))
    out = store.remove(a.id, force=True)
    assert out == [{"Untagged": "a:1"}, {"Untagged": "b:1"}, {"Deleted": a.id}, {"Deleted": sha(BASE)}]


def test_removing_frees_exactly_the_unshared_layers_and_blobs(store: ImageStore) -> None:
    small = ArchImage([BASE], tags=["small:1"])
    big = ArchImage([BASE, TOP, THIRD], tags=["big:1"])
    mid = ArchImage([BASE, TOP], tags=["mid:1"], cmd=["mid"])
    load(store, docker_archive_v1([small, big, mid]))
    chains = store.get("big:1").chain_ids
    assert len({s.name for s in store.snapshotter.walk()}) == 3
    out = store.remove("big:1")
    assert out == [{"Untagged": "big:1"}, {"Deleted": big.id}, {"Deleted": chains[2]}]
    assert {s.name for s in store.snapshotter.walk()} == set(chains[:2])
    assert sha(THIRD) not in set(store.content.walk()) and sha(TOP) in set(store.content.walk())
    out = store.remove("mid:1")
    assert out == [{"Untagged": "mid:1"}, {"Deleted": mid.id}, {"Deleted": chains[1]}]
    store.remove("small:1")
    assert store_state(store) == ([], [], [], [])
    assert os.listdir(store.data_root / "layers") in ([], ["l"]) or all(
        not (store.data_root / "layers" / d / "diff").exists() for d in os.listdir(store.data_root / "layers")
    )


def test_in_use_hook_blocks_deletion(data_root: Path) -> None:
    used: set[str] = set()
    store = ImageStore.open(data_root, db=Database.open(data_root / "sampan.db"), in_use=lambda i: i in used)
    a = ArchImage([BASE], tags=["a:1"])
    load(store, docker_archive_v1([a]))
    used.add(a.id)
    with pytest.raises(ImageInUse, match='unable to remove repository reference "a:1"'):
        store.remove("a:1")
    with pytest.raises(ImageInUse, match="being used by a container"):
        store.remove(a.id)
    assert store.remove(a.id, force=True) == [{"Untagged": "a:1"}]  # untagged, kept
    assert store.get(a.id).repo_tags == []
    assert store.prune(all=True) == ([], 0)
    used.clear()
    deleted, reclaimed = store.prune()
    assert deleted[0] == {"Deleted": a.id} and reclaimed > 0
    store.db.close()


def test_prune_dangling_all_and_filters(store: ImageStore) -> None:
    dangling = ArchImage([BASE, THIRD])
    tagged = ArchImage([BASE, TOP], tags=["keep:1"])
    load(store, docker_archive_v1([dangling, tagged]))
    blob_bytes = store.content.size(sha(THIRD)) + store.content.size(dangling.id)
    deleted, reclaimed = store.prune()
    assert deleted == [{"Deleted": dangling.id}, {"Deleted": store_chain(dangling)}]
    assert reclaimed >= blob_bytes  # the blobs plus the layer dir really freed
    with pytest.raises(InvalidArgument, match="invalid filter 'bogus'"):
        store.prune(filters={"bogus": ["1"]})
    assert store.prune(all=True, filters={"label": ["nope"]}) == ([], 0)
    assert store.prune(all=True, filters={"until": ["2000-01-01T00:00:00Z"]}) == ([], 0)
    deleted, _ = store.prune(all=True)
    assert deleted[:2] == [{"Untagged": "keep:1"}, {"Deleted": tagged.id}]
    assert store_state(store) == ([], [], [], [])


def store_chain(img: ArchImage) -> str:
    from sampan.oci import digest as dg

    return dg.chain_ids([sha(x) for x in img.layers])[-1]


def test_disk_usage_counts_shared_layers(store: ImageStore) -> None:
    load(store, docker_archive_v1([ArchImage([BASE], tags=["a:1"]), ArchImage([BASE, TOP], tags=["b:1"])]))
    usage = store.disk_usage()
    assert usage.layers_size == len(BASE) + len(TOP)
    by_tag = {u.image.repo_tags[0]: u for u in usage.images}
    assert (by_tag["a:1"].shared_size, by_tag["a:1"].unique_size) == (len(BASE), 0)
    assert (by_tag["b:1"].shared_size, by_tag["b:1"].unique_size) == (len(BASE), len(TOP))


def test_reconcile_drops_only_what_no_image_references(store: ImageStore) -> None:
    load(store, docker_archive_v1([ArchImage([BASE], tags=["a:1"])]))
    kept = store_state(store)
    orphan_blob = store.content.put_bytes(b"orphan")
    store.snapshotter.prepare("extract-crashed", store.get("a:1").chain_ids[0])
    store.snapshotter.prepare("extract-base", None)
    store.snapshotter.commit(sha(TOP), "extract-base")
    (store.content.tmp / "blob-partial").write_bytes(b"x")
    (store.content.tmp / "spool").mkdir()
    assert orphan_blob in set(store.content.walk())
    store.reconcile()
    assert store_state(store) == kept
    assert store.get("a:1").diff_ids == [sha(BASE)]


def test_parents_children_and_noprune(store: ImageStore) -> None:
    base = ArchImage([BASE], tags=["base:1"])
    child = ArchImage([BASE, TOP], tags=["child:1"])
    load(store, docker_archive_v1([base, child]))
    # a parent link is what a local commit or build records
    store.db.execute("UPDATE images SET parent = ? WHERE id = ?", (base.id, child.id))
    assert store.remove("base:1") == [{"Untagged": "base:1"}]  # kept: it has a child
    with pytest.raises(ImageInUse, match="image has dependent child images"):
        store.remove(base.id)
    out = store.remove("child:1")
    assert out == [{"Untagged": "child:1"}, {"Deleted": child.id}, {"Deleted": store_chain(child)},
                   {"Deleted": base.id}, {"Deleted": sha(BASE)}]
    assert store_state(store) == ([], [], [], [])
    load(store, docker_archive_v1([base, child]))
    store.db.execute("UPDATE images SET parent = ? WHERE id = ?", (base.id, child.id))
    store.remove("base:1")
    assert [r for r in store.remove("child:1", prune=False) if r.get("Deleted") == base.id] == []
    assert store.get(base.id).repo_tags == []


def test_concurrent_loads_and_removals_stay_consistent(store: ImageStore) -> None:
    import threading

    data = docker_archive_v1([ArchImage([BASE, TOP, THIRD], tags=["same:1"])])
    other = docker_archive_v1([ArchImage([BASE], tags=["other:1"])])
    errors: list[BaseException] = []

    def run(fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    jobs = [lambda: load(store, data) for _ in range(3)] + [lambda: load(store, other)]
    threads = [threading.Thread(target=run, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(t for i in store.list() for t in i.repo_tags) == ["other:1", "same:1"]
    removers = [threading.Thread(target=run, args=(lambda: store.remove("other:1"),)),
                threading.Thread(target=run, args=(lambda: load(store, data),))]
    for t in removers:
        t.start()
    for t in removers:
        t.join()
    assert errors == []
    image = store.get("same:1")
    assert {s.name for s in store.snapshotter.walk()} == set(image.chain_ids)
    blobs = {r["digest"] for r in store.db.query("SELECT digest FROM image_blobs")}
    assert set(store.content.walk()) == blobs
