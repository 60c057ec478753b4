"""``sampan registry gc`` while the server runs: dry run, sweep, --delete-untagged, and no loss of
blobs that concurrent pushes need."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_harness import REPO, Server, skopeo, start_server

from sampan.distribution.server.gc import collect
from sampan.distribution.server.storage import RegistryStorage


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "storage")
    try:
        yield server
    finally:
        server.stop()


def _gc(storage: Path, *flags: str) -> str:
    if "--grace" not in flags:
        flags = ("--grace", "0", *flags)
    r = subprocess.run([sys.executable, "-m", "sampan.registry_main", "gc", "--storage", str(storage), *flags],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _blob_exists(storage: Path, digest: str) -> bool:
    return (storage / "blobs" / "sha256" / digest.split(":")[1]).exists()


def test_gc_dry_run_sweep_and_untagged(reg: Server) -> None:
    kept, kept_doc = reg.push_image("gc/app", "v1", [b"shared layer", b"kept layer"])
    old, old_doc = reg.push_image("gc/app", "v2", [b"shared layer", b"old layer"])
    reg.push_image("gc/app", "v2", [b"shared layer", b"new layer"])  # v2 moves: `old` is untagged
    orphan = reg.push_blob("gc/app", b"an orphan blob")
    old_layer = old_doc["layers"][1]["digest"]

    out = _gc(reg.storage, "--dry-run", "--delete-untagged")
    assert f"would delete manifest gc/app@{old}" in out
    assert f"would delete blob {orphan}" in out and f"would delete blob {old_layer}" in out
    assert _blob_exists(reg.storage, orphan) and _blob_exists(reg.storage, old)

    out = _gc(reg.storage)  # without --delete-untagged, untagged manifests keep their blobs
    assert f"deleted blob {orphan}" in out and old_layer not in out
    assert not _blob_exists(reg.storage, orphan)
    assert reg.request("HEAD", f"/v2/gc/app/blobs/{orphan}").status == 404
    assert reg.request("GET", f"/v2/gc/app/manifests/{old}").status == 200

    out = _gc(reg.storage, "--delete-untagged")
    assert f"deleted manifest gc/app@{old}" in out and f"deleted blob {old_layer}" in out
    assert reg.request("GET", f"/v2/gc/app/manifests/{old}").status == 404
    assert reg.request("HEAD", f"/v2/gc/app/blobs/{old_layer}").status == 404
    # everything tagged is intact, and a client can still pull it
    for tag in ("v1", "v2"):
        r = skopeo("inspect", "--tls-verify=false", f"docker://{reg.addr}/gc/app:{tag}")
        assert r.returncode == 0, r.stderr
    assert reg.request("GET", f"/v2/gc/app/manifests/{kept}").status == 200
    for layer in kept_doc["layers"]:
        assert reg.request("GET", f"/v2/gc/app/blobs/{layer['digest']}").status == 200
    # nothing left to collect
    assert "0 blobs deleted" in _gc(reg.storage, "--delete-untagged")


def test_gc_keeps_blobs_younger_than_grace(reg: Server) -> None:
    orphan = reg.push_blob("gc/grace", b"just uploaded")
    out = _gc(reg.storage, "--grace", "3600")
    assert "1 recent blobs kept" in out and _blob_exists(reg.storage, orphan)


@pytest.mark.parametrize("grace", [0.0, 60.0])
def test_gc_concurrent_with_pushes(reg: Server, grace: float) -> None:
    """Pushes running during repeated gc runs end with complete, pullable images."""
    pushed: list[tuple[str, dict[str, object]]] = []
    errors: list[str] = []

    def pusher() -> None:
        for i in range(25):
            try:
                # the blob goes up first, the manifest later: gc may run in between
                pushed.append(reg.push_image("gc/busy", f"t{i}", [f"layer {i}".encode(), b"common"]))
            except AssertionError as exc:
                errors.append(str(exc))

    t = threading.Thread(target=pusher)
    t.start()
    storage = RegistryStorage(reg.storage)
    while t.is_alive():
        collect(storage, delete_untagged=True, grace=grace)
    t.join()
    collect(storage, delete_untagged=True, grace=grace)
    # a manifest push may be refused (MANIFEST_BLOB_UNKNOWN) if gc swept a blob uploaded before
    # it started and not yet referenced; what was accepted must be whole
    for digest, doc in pushed:
        assert reg.request("GET", f"/v2/gc/busy/manifests/{digest}").status == 200
        for layer in doc["layers"]:  # type: ignore[attr-defined]
            assert reg.request("HEAD", f"/v2/gc/busy/blobs/{layer['digest']}").status == 200
        assert reg.request("HEAD", f"/v2/gc/busy/blobs/{doc['config']['digest']}").status == 200  # type: ignore[index]
    assert len(pushed) + len(errors) == 25
    if grace:  # with a grace period longer than a push, no push is refused either
        assert errors == []
