"""The registry's web page, rendered from a storage directory (no server, no browser)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sampan.distribution.server import web
from sampan.distribution.server.storage import RegistryStorage

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob(storage: RegistryStorage, name: str, data: bytes) -> str:
    up = storage.new_upload(name)
    up.write(data)
    return storage.finish_upload(up, sha(data))


def _image(storage: RegistryStorage, name: str, ref: str, layer: bytes) -> tuple[str, int]:
    cfg = _blob(storage, name, b"{}")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": _blob(storage, name, layer), "size": len(layer)}]}
    body = json.dumps(doc).encode()
    digest, _ = storage.put_manifest(name, ref, body, OCI_MANIFEST)
    return digest, len(body)


def test_page_lists_tags_layers_sizes_and_indexes(tmp_path: Path) -> None:
    storage = RegistryStorage(tmp_path)
    digest, size = _image(storage, "lib/app", "v1", b"x" * 3000)
    amd, amd_size = _image(storage, "lib/multi", "amd", b"amd64 layer")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_size,
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    storage.put_manifest("lib/multi", "latest", index, OCI_INDEX)
    storage.delete_manifest("lib/multi", "amd")  # the tag only: the child stays, reached by the index
    _image(storage, "lib/app", "old", b"old layer")
    storage.delete_manifest("lib/app", "old")

    html = web.render(storage)
    assert "2 repositories" in html
    assert "<h3>lib/app:v1</h3>" in html and f"<code class=manifest-digest>{digest}</code>" in html
    assert f'data-bytes="{size}"' in html and 'data-bytes="3000"' in html and "(2.9 KiB)" in html
    assert "1 untagged manifest(s)" in html  # lib/app:old
    assert "platform linux/amd64" in html and f"<code class=manifest-digest>{amd}</code>" in html

    only_multi = web.render(storage, lambda name: name == "lib/multi")
    assert "lib/app" not in only_multi and "1 repositories" in only_multi


def test_human_sizes() -> None:
    assert [web.human(n) for n in (0, 1023, 1024, 5 << 20, 3 << 30)] == ["0 B", "1023 B", "1.0 KiB", "5.0 MiB", "3.0 GiB"]
