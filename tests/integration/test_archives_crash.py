"""SIGKILL in the middle of a load leaves no partial image: after reconcile() every blob and
every layer dir is referenced by an image, no active snapshot is left and tmp/ is empty."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from sampan.image.store import ImageStore
from sampan.storage.db import Database
from sampan.storage.snapshots import Kind
from tests.integration.test_archives_load import config_bytes

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAYER_MIB = 32

LOADER = """
import sys
from pathlib import Path
from sampan.distribution import load_archive
from sampan.image.store import ImageStore
from sampan.storage.db import Database
root = Path(sys.argv[1])
store = ImageStore.open(root, db=Database.open(root / "sampan.db"))
with open(sys.argv[2], "rb") as f:
    print(load_archive(store, f), flush=True)
"""


def make_archive(path: Path) -> str:
    """A docker-archive with one layer holding one random file; returns the image ID."""
    layer_path = path.with_suffix(".layer")
    data_path = path.with_suffix(".bin")
    with open(data_path, "wb") as f:
        for _ in range(LAYER_MIB):
            f.write(os.urandom(1 << 20))
    with tarfile.open(layer_path, "w") as tf:
        tf.add(data_path, arcname="big.bin")
    h = hashlib.sha256()
    with open(layer_path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    diff_id = "sha256:" + h.hexdigest()
    config = config_bytes([], created="2024-01-01T00:00:00Z").replace(b'"diff_ids": []', f'"diff_ids": ["{diff_id}"]'.encode())
    cfg_path = path.with_suffix(".json")
    cfg_path.write_bytes(config)
    manifest = path.with_name("manifest.json")
    manifest.write_text('[{"Config":"config.json","RepoTags":["big:1"],"Layers":["l/layer.tar"]}]')
    with tarfile.open(path, "w") as tf:
        tf.add(cfg_path, arcname="config.json")
        tf.add(layer_path, arcname="l/layer.tar")
        tf.add(manifest, arcname="manifest.json")
    return "sha256:" + hashlib.sha256(config).hexdigest()


def check_consistent(root: Path) -> list[str]:
    store = ImageStore.open(root, db=Database.open(root / "sampan.db"))
    try:
        store.reconcile()
        images = store.list()
        blobs = {r["digest"] for r in store.db.query("SELECT digest FROM image_blobs")}
        chains = {r["chain_id"] for r in store.db.query("SELECT chain_id FROM image_layers")}
        snaps = list(store.snapshotter.walk())
        assert set(store.content.walk()) == blobs
        assert {s.name for s in snaps} == chains
        assert all(s.kind is Kind.COMMITTED for s in snaps)
        dirs = [d for d in os.listdir(root / "layers") if d != "l" and not d.startswith(".")]
        assert len(dirs) == len(snaps)
        # (.probe-* is storage/select.py's overlay probe, not image data: H1's to clean up)
        leftovers = [p for p in os.listdir(root / "layers") if p.startswith(".") and not p.startswith(".probe-")]
        assert leftovers == []
        assert os.listdir(root / "tmp") == []
        for image in images:  # a listed image is whole
            assert image.repo_tags == ["big:1"] and len(image.layers) == 1
            assert store.content.exists(image.id) and store.content.exists(image.layers[0].blob)
        return [i.id for i in images]
    finally:
        store.db.close()


def _spooling(root: Path) -> bool:
    """A blob is being written under tmp/."""
    try:
        return any(e.name.startswith("blob-") and e.stat().st_size > (4 << 20) for e in os.scandir(root / "tmp"))
    except FileNotFoundError:
        return False


def _unpacking(root: Path) -> bool:
    """A layer is being unpacked: a snapshot dir with data in its diff/, no image row yet."""
    try:
        dirs = [e for e in os.scandir(root / "layers") if e.name != "l" and e.is_dir()]
    except FileNotFoundError:
        return False
    for d in dirs:
        big = Path(d.path) / "diff" / "big.bin"
        try:
            if big.stat().st_size > (4 << 20):
                return True
        except FileNotFoundError:
            continue
    return False


def test_sigkill_during_load(tmp_path: Path) -> None:
    archive = tmp_path / "big.tar"
    image_id = make_archive(archive)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    phases = {"early": lambda root: True, "spooling": _spooling, "unpacking": _unpacking, "never": lambda root: False}
    hit = {}
    for name, condition in phases.items():
        root = tmp_path / name
        root.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", LOADER, str(root), str(archive)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while proc.poll() is None and not condition(root) and time.monotonic() < deadline:
            time.sleep(0.002)
        hit[name] = proc.poll() is None
        if hit[name]:
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        loaded = check_consistent(root)
        if name == "never":
            assert proc.returncode == 0, err.decode()
            assert b"Loaded image: big:1" in out and loaded == [image_id]
        else:
            assert loaded == [], name  # killed before the final transaction: nothing listed
    assert hit["spooling"] and hit["unpacking"], hit
