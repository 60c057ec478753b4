"""docker load / save through the one copy routine: docker-archive (old style with
``<id>/layer.tar``, Docker 25+ style with an OCI layout inside), OCI layout archives, gzip;
IDs preserved; byte-identical saves; external oracles (skopeo, umoci)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sampan._sys import mount as sysmount
from sampan.distribution import load_archive, save_archive
from sampan.image.store import ImageStore
from sampan.storage.db import Database

pytestmark = pytest.mark.root


# ---------------------------------------------------------------- builders (used by other test files)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(entries: list[tuple[str, bytes | tuple[str, str]]]) -> bytes:
    """A tar of (name, data) files and (name, ("symlink"|"hardlink", target)) links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE if content[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = content[1]
                tf.addfile(info)
            elif name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def layer(files: dict[str, bytes]) -> bytes:
    return tar_bytes(sorted(files.items()))


def config_bytes(layers: list[bytes], *, cmd: list[str] | None = None, created: str = "2024-01-01T00:00:00Z") -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Cmd": cmd or ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
        "history": [{"created": created, "created_by": f"layer {i}"} for i in range(len(layers))],
    }, sort_keys=True).encode()


@dataclass
class ArchImage:
    layers: list[bytes]
    tags: list[str] = field(default_factory=list)
    cmd: list[str] | None = None

    @property
    def config(self) -> bytes:
        return config_bytes(self.layers, cmd=self.cmd)

    @property
    def id(self) -> str:
        return sha(self.config)


def docker_archive_v1(images: list[ArchImage]) -> bytes:
    """Docker < 25 layout: <v1id>/layer.tar (symlinks for layers already written), <id>.json."""
    entries: list[tuple[str, bytes | tuple[str, str]]] = []
    manifest = []
    written: dict[str, str] = {}
    for img in images:
        paths = []
        parent = ""
        for data in img.layers:
            v1 = hashlib.sha256((parent + sha(data)).encode()).hexdigest()
            parent = v1
            path = f"{v1}/layer.tar"
            if sha(data) in written and written[sha(data)] != path:
                entries.append((path, ("symlink", f"../{written[sha(data)]}")))
            elif path not in {e[0] for e in entries}:
                entries.append((f"{v1}/VERSION", b"1.0"))
                entries.append((path, data))
                written[sha(data)] = path
            paths.append(path)
        cfg_name = img.id[7:] + ".json"
        entries.append((cfg_name, img.config))
        manifest.append({"Config": cfg_name, "RepoTags": img.tags or None, "Layers": paths})
    entries.append(("manifest.json", json.dumps(manifest).encode()))
    return tar_bytes(entries)


def oci_archive(images: list[ArchImage], *, gzip_layers: bool = True, names: bool = True) -> bytes:
    blobs: dict[str, bytes] = {}
    index = []
    for img in images:
        layer_descs = []
        for data in img.layers:
            blob = gzip.compress(data, mtime=0) if gzip_layers else data
            blobs[sha(blob)] = blob
            mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
            layer_descs.append({"mediaType": mt, "digest": sha(blob), "size": len(blob)})
        blobs[img.id] = img.config
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id, "size": len(img.config)},
            "layers": layer_descs,
        }).encode()
        blobs[sha(manifest)] = manifest
        desc: dict[str, object] = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest), "size": len(manifest)}
        for tag in img.tags or [None]:  # type: ignore[list-item]
            d = dict(desc)
            if tag and names:
                d["annotations"] = {"io.containerd.image.name": tag}
            index.append(d)
    entries: list[tuple[str, bytes | tuple[str, str]]] = [
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        ("index.json", json.dumps({"schemaVersion": 2, "manifests": index}).encode()),
    ]
    entries += [(f"blobs/sha256/{d[7:]}", b) for d, b in sorted(blobs.items())]
    return tar_bytes(entries)


def open_store(root: Path) -> ImageStore:
    return ImageStore.open(root, db=Database.open(root / "sampan.db"))


def store_state(store: ImageStore) -> tuple[list[str], list[str], list[str], list[str]]:
    """What a refusal must leave unchanged: images, blobs (and every file under content/),
    snapshots (and every entry under layers/ and layers/l/), tmp/."""
    layers = store.data_root / "layers"
    raw = sorted(
        str(p.relative_to(layers)) for p in [*layers.glob("*"), *layers.glob("l/*")]
        if not p.name.startswith(".probe-")
    )
    files = sorted(str(p.relative_to(store.content.root)) for p in store.content.root.rglob("*") if p.is_file())
    snaps = sorted(s.name for s in store.snapshotter.walk())
    return (
        sorted(i.id for i in store.list()),
        sorted(store.content.walk()) + files,
        snaps + raw if snaps or raw != ["l"] else [],
        sorted(os.listdir(store.content.tmp)),
    )


def load(store: ImageStore, data: bytes) -> list[str]:
    return load_archive(store, io.BytesIO(data))


BASE = layer({"bin/hello": b"hello\n", "etc/os-release": b"ID=test\n"})
TOP = layer({"app/run": b"#!/bin/sh\necho run\n", ".wh.etc": b""})


@pytest.fixture
def store(data_root: Path) -> Iterator[ImageStore]:
    s = open_store(data_root)
    yield s
    s.db.close()


# ---------------------------------------------------------------- tests


def test_old_style_docker_archive_keeps_ids_and_shares_layers(store: ImageStore) -> None:
    a = ArchImage([BASE], tags=["base:1"])
    b = ArchImage([BASE, TOP], tags=["app:1", "localhost:5000/app:2"], cmd=["run"])
    lines = load(store, docker_archive_v1([a, b]))
    assert lines == ["Loaded image: base:1", "Loaded image: app:1", "Loaded image: localhost:5000/app:2"]
    assert {i.id for i in store.list()} == {a.id, b.id}
    app = store.get("app:1")
    assert app.diff_ids == [sha(BASE), sha(TOP)]
    assert app.size == len(BASE) + len(TOP)
    assert store.get("base:1").chain_ids[0] == app.chain_ids[0]
    assert len(list(store.snapshotter.walk())) == 2  # the base layer is unpacked once
    assert store_state(store)[3] == []


def test_save_load_round_trip_is_deterministic(store: ImageStore, tmp_path: Path) -> None:
    a = ArchImage([BASE, TOP], tags=["app:1"])
    load(store, docker_archive_v1([a]))
    store.tag("app:1", "app:2")
    first, second = io.BytesIO(), io.BytesIO()
    save_archive(store, ["app"], first)
    save_archive(store, ["app"], second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as tf:
        names = tf.getnames()
        manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        index = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
    assert {"index.json", "manifest.json", "oci-layout", "repositories", f"blobs/sha256/{a.id[7:]}"} <= set(names)
    assert manifest == [{"Config": f"blobs/sha256/{a.id[7:]}", "RepoTags": ["app:1", "app:2"],
                         "Layers": [f"blobs/sha256/{sha(BASE)[7:]}", f"blobs/sha256/{sha(TOP)[7:]}"]}]
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [
        "docker.io/library/app:1", "docker.io/library/app:2"]
    other = open_store(tmp_path / "other")
    assert load(other, first.getvalue()) == ["Loaded image: app:1", "Loaded image: app:2"]
    assert other.get("app:2").id == a.id
    one = io.BytesIO()
    save_archive(store, ["app:2"], one)
    with tarfile.open(fileobj=io.BytesIO(one.getvalue())) as tf:
        assert json.loads(tf.extractfile("manifest.json").read())[0]["RepoTags"] == ["app:2"]  # type: ignore[union-attr]


def test_oci_layout_archive_gzip_layers_and_gzipped_archive(store: ImageStore) -> None:
    a = ArchImage([BASE, TOP], tags=["quay.io/x/app:v1"])
    untagged = ArchImage([TOP], cmd=["x"])
    data = gzip.compress(oci_archive([a, untagged]), mtime=0)
    lines = load(store, data)
    assert lines == ["Loaded image: quay.io/x/app:v1", f"Loaded image ID: {untagged.id}"]
    image = store.get("quay.io/x/app:v1")
    assert image.id == a.id
    assert image.manifest_digest is not None
    assert [la.media_type for la in image.layers] == ["application/vnd.oci.image.layer.v1.tar+gzip"] * 2
    saved = io.BytesIO()
    save_archive(store, ["quay.io/x/app:v1"], saved)  # layers written uncompressed, digest = diff_id
    with tarfile.open(fileobj=io.BytesIO(saved.getvalue())) as tf:
        assert tf.extractfile(f"blobs/sha256/{sha(TOP)[7:]}").read() == TOP  # type: ignore[union-attr]


def test_reloading_moves_a_tag_as_docker_does(store: ImageStore) -> None:
    load(store, docker_archive_v1([ArchImage([BASE], tags=["x:1"])]))
    newer = ArchImage([BASE, TOP], tags=["x:1"])
    lines = load(store, docker_archive_v1([newer]))
    assert lines[0].startswith("The image x:1 already exists, renaming the old one with ID sha256:")
    assert lines[1] == "Loaded image: x:1"
    assert store.get("x:1").id == newer.id
    assert len(store.list()) == 2  # the old one is now dangling


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_and_umoci_read_a_saved_archive(store: ImageStore, busybox_rootfs_tar: Path, tmp_path: Path) -> None:
    with open(busybox_rootfs_tar, "rb") as f:
        image = store.import_rootfs(f, reference="busybox", changes=['CMD ["sh"]'])
    out = tmp_path / "busybox.tar"
    with open(out, "wb") as f:
        save_archive(store, ["busybox"], f)
    info = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"docker-archive:{out}"],
                                     check=True, capture_output=True).stdout)
    assert info["config"]["Cmd"] == ["sh"]
    assert info["rootfs"]["diff_ids"] == image.diff_ids
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(out) as tf:
        tf.extractall(layout, filter="data")
    oci = json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:latest"],
                                    check=True, capture_output=True).stdout)
    assert oci["config"]["digest"] == image.id
    if shutil.which("umoci"):
        subprocess.run(["umoci", "stat", "--image", f"{layout}:latest"], check=True, capture_output=True)
    # and skopeo's own docker-archive (old style, symlinked legacy dir) loads back with the same ID
    legacy = tmp_path / "legacy.tar"
    subprocess.run(["skopeo", "copy", f"docker-archive:{out}", f"docker-archive:{legacy}:busybox:old"],
                   check=True, capture_output=True)
    with open(legacy, "rb") as f:
        assert load_archive(store, f) == ["Loaded image: busybox:old"]
    assert store.get("busybox:old").id == image.id


def test_loaded_image_mounts_read_only(store: ImageStore, tmp_path: Path) -> None:
    load(store, docker_archive_v1([ArchImage([BASE, TOP], tags=["app:1"])]))
    target = tmp_path / "mnt"
    target.mkdir()
    mounts = store.mounts("app:1", "view-test")
    try:
        for m in mounts:
            sysmount.perform(m, str(target))
        try:
            assert (target / "app/run").read_bytes().startswith(b"#!/bin/sh")
            assert (target / "bin/hello").read_bytes() == b"hello\n"
            assert not (target / "etc").exists()  # removed by the whiteout in TOP
        finally:
            sysmount.umount(str(target))
    finally:
        store.snapshotter.remove("view-test")


@pytest.mark.slow
def test_two_hundred_layers_load_and_mount(store: ImageStore, tmp_path: Path) -> None:
    layers = [layer({"bottom": b"first\n"})]
    layers += [layer({f"f{i:03d}": str(i).encode()}) for i in range(1, 199)]
    layers.append(layer({".wh.f100": b""}))
    events: list[dict[str, object]] = []
    load_archive(store, io.BytesIO(docker_archive_v1([ArchImage(layers, tags=["deep:1"])])), on_progress=events.append)
    assert len(store.get("deep:1").chain_ids) == 200
    assert sum(1 for e in events if e["status"] == "Loading layer") == 400  # start and end of each
    target = tmp_path / "mnt"
    target.mkdir()
    mounts = store.mounts("deep:1", "view-deep")
    try:
        for m in mounts:
            sysmount.perform(m, str(target))
        try:
            assert (target / "bottom").read_bytes() == b"first\n"
            assert (target / "f198").read_bytes() == b"198"
            assert not (target / "f100").exists()
        finally:
            sysmount.umount(str(target))
    finally:
        store.snapshotter.remove("view-deep")


@pytest.mark.peers
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed")
def test_podman_loads_a_saved_archive_with_the_same_id(store: ImageStore, busybox_rootfs_tar: Path, tmp_path: Path) -> None:
    with open(busybox_rootfs_tar, "rb") as f:
        image = store.import_rootfs(f, reference="busybox:sampan", changes=['CMD ["sh"]'])
    out = tmp_path / "busybox.tar"
    with open(out, "wb") as f:
        save_archive(store, ["busybox:sampan"], f)
    import tempfile

    runroot = tempfile.mkdtemp(prefix="sp-prun-", dir="/tmp")  # podman wants <= 50 characters
    podman = ["podman", "--root", str(tmp_path / "proot"), "--runroot", runroot,
              "--storage-driver", "vfs"]
    try:
        subprocess.run([*podman, "load", "-i", str(out)], check=True, capture_output=True, timeout=120)
        ids = subprocess.run([*podman, "images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.split("\n")
        assert f"{image.id} docker.io/library/busybox:sampan" in ids
    finally:
        subprocess.run([*podman, "system", "reset", "--force"], capture_output=True, timeout=60)
        shutil.rmtree(runroot, ignore_errors=True)
